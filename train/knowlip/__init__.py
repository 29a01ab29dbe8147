"""SCIO (paper 3.4, Algorithm 1): self-consistent iterative optimisation of SAR-KnowLIP's texts during training.

`from train.knowlip import ScioConfig, ScioTrainer`; `ScioTrainer(model, processor, dataset, config).run()` trains the
three stages, writes the noise pool and refined texts as `datasets` folders and resumes where it stopped.
"""

from .scio_passes import ModelTextOps, ReconstructionResult, ScreeningResult, reconstruct_texts, screen_texts
from .scio_rules import ReconstructionDecision, ScreeningDecision, accept_reconstruction, screen
from .scio_text import EncodedTexts, encode_subtexts, replaced, without
from .scio_trainer import ScioConfig, ScioTrainer, load_text_version

__all__ = [
    "EncodedTexts",
    "ModelTextOps",
    "ReconstructionDecision",
    "ReconstructionResult",
    "ScioConfig",
    "ScioTrainer",
    "ScreeningDecision",
    "ScreeningResult",
    "accept_reconstruction",
    "encode_subtexts",
    "load_text_version",
    "reconstruct_texts",
    "replaced",
    "screen",
    "screen_texts",
    "without",
]
