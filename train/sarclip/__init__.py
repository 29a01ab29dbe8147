"""SARCLIP training with Accelerate: `python -m train fit --config train/sarclip/configs/quickstart.yaml`.

Python API: `from train.sarclip import TrainConfig, fit`; `fit(TrainConfig(...))` returns a `TrainResult` (model
folder, final trainer state, losses, metrics).
"""

from .config import TrainConfig
from .trainer import TrainResult, fit

__all__ = ["TrainConfig", "TrainResult", "fit"]
