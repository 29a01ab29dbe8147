"""SCIO (paper 3.4, Algorithm 1): self-consistent iterative optimisation of SAR-KnowLIP's texts during training.

`fit_scio(ScioRunConfig(...))` (CLI: `python -m train.knowlip fit --config ...`) builds data, model, tokenizer and
LoRA from a config and runs `ScioTrainer`, which trains the three stages, writes the noise pool and refined texts as
`datasets` folders and resumes where it stopped. `evaluate_knowlip` runs the downstream evaluation. Internals (the
screening and reconstruction passes, their rules) are importable by module path.
"""

from .evaluate import evaluate_knowlip
from .fit import ScioRunResult, fit_scio
from .run_config import ScioRunConfig
from .scio_trainer import ScioConfig, ScioTrainer, load_text_version

__all__ = ["ScioConfig", "ScioRunConfig", "ScioRunResult", "ScioTrainer", "evaluate_knowlip", "fit_scio", "load_text_version"]
