"""Training and evaluation for both model families, in symmetric wings:

- `train.common`: what every trainer shares: the training loop, its data object, optimizer, schedules and metrics
  log, atomic checkpoints with exact resume, YAML/CLI run configs with one validation path, LoRA, Hub push and model
  cards;
- `train.sarclip`: SARCLIP contrastive training (`python -m train ...` = `python -m train.sarclip ...`);
- `train.knowlip`: SCIO training of SAR-KnowLIP (`python -m train.knowlip ...`);
- `train.evaluation`: one evaluation home (retrieval recall, zero-shot, linear probe, captioning, VQA).
"""

from sar_utils import __version__

__all__ = ["__version__"]
