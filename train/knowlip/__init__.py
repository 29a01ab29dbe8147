"""SCIO (paper 3.4, Algorithm 1): self-consistent iterative optimisation of SAR-KnowLIP's texts during training.

`from train.knowlip import ScioConfig, ScioTrainer`; `ScioTrainer(model, processor, dataset, config).run()` trains the
three stages, writes the noise pool and refined texts as `datasets` folders and resumes where it stopped.
`fit_scio(ScioRunConfig(...))` (CLI: `python -m train.knowlip fit --config ...`) builds data, model, tokenizer and
LoRA from a config first.
"""

from .evaluate import evaluate_knowlip
from .fit import ScioRunResult, fit_scio, load_scio_dataset, load_scio_model
from .lora import add_scio_lora
from .run_config import ScioRunConfig
from .scio_passes import ModelTextOps, ReconstructionResult, ScreeningResult, reconstruct_texts, screen_texts
from .scio_rules import ReconstructionDecision, ScreeningDecision, accept_reconstruction, screen
from .scio_text import EncodedTexts, encode_subtexts, replaced, without
from .scio_trainer import ScioConfig, ScioTrainer, load_text_version, scio_accelerator
from .synthetic_texts import synthetic_scio_dataset, synthetic_subtexts

__all__ = [
    "EncodedTexts",
    "ModelTextOps",
    "ReconstructionDecision",
    "ReconstructionResult",
    "ScioConfig",
    "ScioRunConfig",
    "ScioRunResult",
    "ScioTrainer",
    "ScreeningDecision",
    "ScreeningResult",
    "accept_reconstruction",
    "add_scio_lora",
    "encode_subtexts",
    "evaluate_knowlip",
    "fit_scio",
    "load_scio_dataset",
    "load_scio_model",
    "load_text_version",
    "reconstruct_texts",
    "replaced",
    "screen",
    "scio_accelerator",
    "screen_texts",
    "synthetic_scio_dataset",
    "synthetic_subtexts",
    "without",
]
