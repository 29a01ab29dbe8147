"""SCIO run configuration: `ScioConfig` plus where the data, model and tokenizer come from and LoRA; loadable from
YAML and overridable with `--field value` CLI flags (the conventions of `train.config.TrainConfig`)."""

from __future__ import annotations

import dataclasses

from ..common.config import YamlConfig
from .scio_trainer import ScioConfig


@dataclasses.dataclass
class ScioRunConfig(ScioConfig, YamlConfig):
    """Everything `python -m train.knowlip fit` needs. YAML keys and CLI flags use the field names.

    data: "synthetic" (`synthetic_num_images` synthetic SAR chips of `synthetic_image_size` px with 8 template
    sub-texts each) or a `datasets.load_dataset` folder / repo whose `split` has `image_column` and `subtexts_column`
    (a list of 8 strings per image). model: a preset name ("tiny", "base", "large"; random init, `model_overrides`
    are extra `SarKnowlipConfig.from_preset` kwargs such as `queue_size`) or a folder saved with `save_pretrained`.
    tokenizer (used when the model folder has no processor): "trained" (a WordPiece of `tokenizer_vocab_size` trained
    on the training texts) or a folder with a BERT tokenizer.
    lora: train peft LoRA adapters on the Linear layers named in `lora_target_modules` of the online towers (vision,
    text, fusion, decoder); the momentum encoders get no adapters and track the effective online weights.
    """

    output_dir: str = "runs/knowlip_scio"
    data: str = "synthetic"
    split: str = "train"
    synthetic_num_images: int = 1000
    synthetic_image_size: int = 224
    max_train_samples: int | None = None
    model: str = "base"
    model_overrides: dict = dataclasses.field(default_factory=dict)
    tokenizer: str = "trained"
    tokenizer_vocab_size: int = 4096
    lora: bool = False
    lora_r: int = 8
    lora_alpha: int = 16
    lora_dropout: float = 0.0
    # BERT towers: attention query/key/value and every `dense`; ViT (transformers 5): q/k/v/o_proj and fc1/fc2
    lora_target_modules: list = dataclasses.field(default_factory=lambda: [
        "query", "key", "value", "dense", "q_proj", "k_proj", "v_proj", "o_proj", "fc1", "fc2"])

    def check(self):
        self.stage_epochs = tuple(self.stage_epochs)
        if len(self.stage_epochs) != 3 or any(not isinstance(n, int) or n < 0 for n in self.stage_epochs):
            raise ValueError(f"stage_epochs must be 3 epoch counts >= 0, got {self.stage_epochs}")

    def to_dict(self) -> dict:
        values = dataclasses.asdict(self)
        values["stage_epochs"] = list(self.stage_epochs)
        return values


__all__ = ["ScioRunConfig"]
