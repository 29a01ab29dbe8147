"""SCIO run configuration: `ScioConfig` plus where the data, model and tokenizer come from and LoRA; loadable from
YAML and overridable with `--field value` CLI flags (the conventions of `train.config.TrainConfig`)."""

from __future__ import annotations

import dataclasses

from ..common.config import YamlConfig, option
from ..common.standardization import check_standardize
from .scio_trainer import ScioConfig


@dataclasses.dataclass
class ScioRunConfig(ScioConfig, YamlConfig):
    """Everything `python -m train.knowlip fit` needs. YAML keys and CLI flags use the field names.

    data: "synthetic" (`synthetic_num_images` chips of `synthetic_image_size` px with 8 template sub-texts each) or
    any `dataset_scripts.loading.load_image_text_data` value (a dataset build, SAR-GEOVL output, an image folder, a
    label or caption table); its sub-texts follow `train/knowlip/subtexts.py`. model: a preset ("tiny", "base",
    "large"; random init, `model_overrides` are extra `SarKnowlipConfig` fields such as `queue_size`), a folder saved
    with `save_pretrained`, or "towers": ViT + BERT from the local folders `vision_tower` and `text_tower` (paper
    4.1; the text tower's tokenizer is used unless `tokenizer` is a folder). lora: peft LoRA adapters on the online
    towers only; the momentum encoders track the effective online weights.
    """

    output_dir: str = option("runs/knowlip_scio", "run folder: checkpoints, text versions, log, final model")
    data: str = option("synthetic", "'synthetic' or a dataset folder / image folder / table (see above)")
    split: str = option("train", "split of `data` to train on")
    synthetic_num_images: int = option(1000, "synthetic data: number of chips", min=2)
    synthetic_image_size: int = option(224, "synthetic data: chip side in pixels", min=8)
    max_train_samples: int | None = option(None, "keep the first N images of the split", min=2)
    model: str = option("base", "preset (tiny, base, large), a saved model folder, or 'towers'")
    model_overrides: dict = option({}, "extra SarKnowlipConfig fields (e.g. {queue_size: 1024}); presets and towers")
    vision_tower: str | None = option(None, "model 'towers': local ViT folder (e.g. an ImageNet ViT)")
    text_tower: str | None = option(None, "model 'towers': local BERT-family folder (e.g. bert-base, MiniLM)")
    num_fusion_layers: int | None = option(None, "model 'towers': BERT layers that become fusion layers (default half)", min=1)
    tokenizer: str = option("trained", "'trained' (WordPiece on the training texts) or a BERT tokenizer folder")
    tokenizer_vocab_size: int = option(4096, "vocabulary of the trained WordPiece", min=1)
    standardize: str | None = option(None, "pixel standardisation after [-1, 1]: none | per_image (each chip by its "
                                     "own mean/std) | dataset (train images' mean/std); null: the model folder's "
                                     "processor setting, none for a new model. Saved with the processor")
    lora: bool = option(False, "train LoRA adapters instead of all weights")
    lora_r: int = option(8, "LoRA rank", min=1)
    lora_alpha: int = option(16, "LoRA scaling numerator", min=1)
    lora_dropout: float = option(0.0, "LoRA dropout", min=0, lt=1)
    # BERT towers: attention query/key/value and every `dense`; ViT (transformers 5): q/k/v/o_proj and fc1/fc2
    push_to_hub: str | None = option(None, "Hub repo id to upload the final model/ folder to")
    hub_private: bool = option(False, "create the Hub repo private")
    lora_target_modules: list = option(["query", "key", "value", "dense", "q_proj", "k_proj", "v_proj", "o_proj",
                                        "fc1", "fc2"], "Linear layer names that get adapters")

    def check(self):
        self.stage_epochs = tuple(self.stage_epochs)
        if len(self.stage_epochs) != 3:
            raise ValueError(f"stage_epochs: give 3 epoch counts (stages 1, 2, 3), got {list(self.stage_epochs)}")
        if (self.model == "towers") != bool(self.vision_tower and self.text_tower):
            raise ValueError("model 'towers' needs vision_tower and text_tower (local folders), and they apply only "
                             f"to it (model is {self.model!r})")
        check_standardize(self.standardize)

    def to_dict(self) -> dict:
        values = dataclasses.asdict(self)
        values["stage_epochs"] = list(self.stage_epochs)
        return values


__all__ = ["ScioRunConfig"]
