"""SCIO (paper 3.4, Algorithm 1): self-consistent iterative optimisation of SAR-KnowLIP's texts during training.

`fit_scio(ScioRunConfig(...))` (CLI: `python -m train.knowlip fit --config ...`) builds data, model, tokenizer and
LoRA from a config and runs `ScioTrainer`, which trains the three stages, writes the noise pool and refined texts as
`datasets` folders and resumes where it stopped; its sub-texts come from any image-text dataset by the rule of
`train.knowlip.subtexts`. `finetune(FinetuneConfig(...))` fine-tunes and evaluates a downstream task
(`python -m train.knowlip finetune`), `evaluate_knowlip` runs the downstream evaluation, `run_chain` the whole
GeoTIFF -> HCoT -> SCIO -> evaluation chain (`python -m train.knowlip chain`). Internals (the screening and
reconstruction passes, their rules, the schedules) are importable by module path.
"""

from .chain import run_chain
from .evaluate import evaluate_knowlip
from .finetune import FinetuneConfig, finetune
from .fit import ScioRunResult, fit_scio
from .run_config import ScioRunConfig
from .scio_trainer import ScioConfig, ScioTrainer, load_text_version

__all__ = ["FinetuneConfig", "ScioConfig", "ScioRunConfig", "ScioRunResult", "ScioTrainer", "evaluate_knowlip", "finetune",
           "fit_scio", "load_text_version", "run_chain"]
