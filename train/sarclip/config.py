"""Training configuration: one dataclass, loadable from YAML, overridable with `--field value` CLI flags."""

from __future__ import annotations

import dataclasses

from ..common.config import YamlConfig

# SARCLIP paper IV-C: lr 5e-4 for ResNet-50, 5e-5 for ViT-B-32 / ViT-L-14.
PAPER_LEARNING_RATES = {"resnet": 5e-4, "vit": 5e-5}


@dataclasses.dataclass
class TrainConfig(YamlConfig):
    """Everything a training run needs. YAML keys and CLI flags use the field names.

    Data (`data`, read by `dataset_scripts.loading.load_image_text_data`): "synthetic" (built-in synthetic SAR set),
    a `datasets.load_dataset` folder or Hub repo with `image` and `captions` (or `caption`) columns, or a caption
    table (open_clip CSV/TSV, SARCLIP list, JSON/JSONL) with an image-path column and a caption column
    (`csv_image_key`, `csv_caption_key`, detected when null; relative paths resolve against the table's folder).

    Model (`model`): an open_clip preset name (ViT-B-32, ViT-B-16, ViT-L-14, RN50, RN101; random init, optionally
    shrunk with `model_overrides`, a dict merged into the preset's SarclipConfig kwargs), or a folder / Hub id saved
    with `save_pretrained` (e.g. a checkpoint converted with `sarclip-convert`). `init_from` (a previous stage's output
    folder) takes precedence over `model`: stage configs chain through it (paper III-C, two-stage domain transfer).

    Tokenizer (`tokenizer`, only used when the model folder has none): "open_clip" (the CLIP BPE shipped with
    open_clip), "trained" (a CLIP-style BPE of `tokenizer_vocab_size` trained on the training captions, for tiny
    from-scratch models), or a folder holding a saved tokenizer.
    """

    # data
    data: str = "synthetic"
    train_split: str = "train"
    eval_split: str | None = "test"
    csv_image_key: str | None = None  # caption-table columns; None: detected from the header
    csv_caption_key: str | None = None
    synthetic_num_train: int = 1000
    synthetic_num_test: int = 200
    synthetic_image_size: int = 64
    max_train_samples: int | None = None
    # model
    model: str = "ViT-B-32"
    model_overrides: dict = dataclasses.field(default_factory=dict)
    init_from: str | None = None
    tokenizer: str = "open_clip"
    tokenizer_vocab_size: int = 1024
    context_length: int | None = None
    # optimisation (defaults: SARCLIP paper IV-C + open_clip's training defaults where the paper gives none)
    learning_rate: float | None = None  # None: the paper's value for the image tower type
    weight_decay: float = 0.2  # open_clip's default (the paper does not give one)
    adam_beta1: float = 0.9
    adam_beta2: float = 0.98  # open_clip / CLIP for ViT towers
    adam_epsilon: float = 1e-6
    warmup_steps: int | None = None
    warmup_ratio: float = 0.1  # used when warmup_steps is None (the paper says "linear warm-up" without a length)
    max_grad_norm: float = 1.0
    batch_size: int = 32  # per process and per micro-batch
    gradient_accumulation_steps: int = 1  # micro-batches per step, contrasted together (GradCache)
    num_epochs: int = 1
    max_steps: int | None = None  # stop after this many optimizer steps (the schedule still spans all epochs)
    mixed_precision: str = "no"  # no | bf16 | fp16
    gradient_checkpointing: bool = False
    seed: int = 0
    # partial unfreezing (paper Fig. 6): number of last blocks trained per tower, None = all
    trainable_vision_layers: int | None = None
    trainable_text_layers: int | None = None
    # LoRA (peft)
    lora: bool = False
    lora_r: int = 8
    lora_alpha: int = 16
    lora_dropout: float = 0.0
    lora_target_modules: list = dataclasses.field(
        default_factory=lambda: ["qkv", "out_proj", "fc1", "fc2", "q_proj", "k_proj", "v_proj", "c_proj"]
    )
    merge_lora: bool = False
    # evaluation after training (train.evaluation.run_evaluation)
    eval_tasks: list = dataclasses.field(default_factory=lambda: ["retrieval", "zero_shot", "linear_probe"])
    eval_batch_size: int = 64
    # output, logging, checkpoints, Hub
    output_dir: str = "runs/sarclip"
    checkpoint_every: int | None = None  # optimizer steps between checkpoints (None: one at the end of each epoch)
    keep_checkpoints: int = 2
    resume: str | None = None  # "latest" or a checkpoint folder
    report_to: str = "tensorboard"  # tensorboard | wandb | none
    log_every: int = 10
    push_to_hub: str | None = None
    hub_private: bool = False
    num_workers: int = 0

    BARE_FLAG_VALUES = {"resume": "latest"}  # a bare --resume continues from the latest checkpoint

    def check(self):
        if self.report_to not in ("tensorboard", "wandb", "none"):
            raise ValueError(f"report_to must be tensorboard, wandb or none, got {self.report_to!r}")
        if self.gradient_accumulation_steps < 1 or self.batch_size < 1:
            raise ValueError("batch_size and gradient_accumulation_steps must be at least 1")
        if self.merge_lora and not self.lora:
            raise ValueError("merge_lora needs lora: true")

    def learning_rate_for(self, is_resnet: bool) -> float:
        if self.learning_rate is not None:
            return self.learning_rate
        return PAPER_LEARNING_RATES["resnet" if is_resnet else "vit"]
