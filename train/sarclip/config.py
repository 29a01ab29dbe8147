"""Training configuration: one dataclass, loadable from YAML, overridable with `--field value` CLI flags."""

from __future__ import annotations

import dataclasses

from ..common.config import TrainingOptions, YamlConfig, option
from ..common.standardization import check_standardize
from ..evaluation.run import TASKS as EVAL_TASKS
from .augment import AUGMENTATIONS

# SARCLIP paper IV-C: lr 5e-4 for ResNet-50, 5e-5 for ViT-B-32 / ViT-L-14.
PAPER_LEARNING_RATES = {"resnet": 5e-4, "vit": 5e-5}
# LoRA fine-tuning of a trained SARCLIP (chosen on MSTAR and OpenSARShip: docs/RESULTS.md)
LORA_LEARNING_RATE = 2e-3
MULTI_POSITIVE = ("auto", "label", "caption", "off")


@dataclasses.dataclass
class TrainConfig(TrainingOptions, YamlConfig):
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
    data: str = option("synthetic", "synthetic | image folder | label or caption table | dataset folder or Hub id")
    train_split: str = option("train", "split trained on")
    eval_split: str | None = option("test", "split evaluated after training (held out of train if absent); null: none")
    held_out_fraction: float = option(0.2, "share of train held out (seeded, stratified) when eval_split is absent", gt=0, lt=1)
    class_words: str | None = option(None, "YAML/JSON mapping class name -> caption words (default: the names)")
    csv_image_key: str | None = option(None, "caption-table image column (null: detected from the header)")
    csv_caption_key: str | None = option(None, "caption-table caption column (null: detected from the header)")
    synthetic_num_train: int = option(1000, "synthetic data: train chips", min=1)
    synthetic_num_test: int = option(200, "synthetic data: test chips", min=1)
    synthetic_image_size: int = option(64, "synthetic data: chip side in pixels", min=1)
    max_train_samples: int | None = option(None, "use at most this many training examples", min=1)
    streaming: bool = option(False, "stream the train split from a dataset folder's parquet shards (bigger than RAM)")
    shuffle_buffer: int = option(2048, "streaming: examples in the shuffle buffer (per DataLoader worker)", min=1)
    standardize: str | None = option(None, "pixel standardisation after [-1, 1]: none | per_image (each chip by its "
                                     "own mean/std) | dataset (train images' mean/std) | auto (fine-tuning on "
                                     "labelled chips: the model folder's setting or per_image, whichever gives "
                                     "the starting model the better linear probe on a validation split of the "
                                     "train chips); null: the model folder's setting, none for a new model. "
                                     "Saved with the processor")
    native_resolution: bool = option(False, "crop the centre image_size pixels at native resolution instead of "
                                     "resizing the chip (new processor; translate then crops real pixels)")
    augment: list = option([], "training augmentations: translate, hflip, vflip (e.g. [translate])", choices=AUGMENTATIONS)
    translate_fraction: float = option(0.125, "translate: largest shift as a fraction of the image side", min=0, lt=0.5)
    # model
    model: str = option("ViT-B-32", "open_clip preset (random init) or a model folder / Hub id")
    model_overrides: dict = option({}, "preset changes in open_clip keys: embed_dim, vision_cfg, text_cfg")
    init_from: str | None = option(None, "a previous run's final/ folder to start from (wins over model)")
    tokenizer: str = option("open_clip", "open_clip | trained | a tokenizer folder (when the model has none)")
    tokenizer_vocab_size: int = option(1024, "vocabulary of a trained tokenizer", min=1)
    context_length: int | None = option(None, "text tower context length of a preset (null: the preset's)", min=1)
    # optimisation (defaults: SARCLIP paper IV-C + open_clip's training defaults where the paper gives none)
    learning_rate: float | None = option(None, "peak rate (null: paper IV-C, 5e-4 ResNet / 5e-5 ViT; LoRA: 2e-3)", gt=0)
    weight_decay: float = option(0.2, "AdamW decay (not on gains, biases, norms, logit_scale); open_clip's", min=0)
    adam_beta1: float = option(0.9, "AdamW beta1", min=0, lt=199)
    adam_beta2: float = option(0.98, "AdamW beta2 (open_clip / CLIP for ViT towers)", min=0, lt=199)
    adam_epsilon: float = option(1e-6, "AdamW epsilon", gt=0)
    warmup_steps: int | None = option(None, "linear warm-up steps (null: warmup_ratio of all steps)", min=0)
    warmup_ratio: float = option(0.1, "warm-up share of all steps when warmup_steps is null (0 to 1)", min=0, lt=1)
    max_grad_norm: float = option(1.0, "gradient clipping norm (0: none)", min=0)
    batch_size: int = option(32, "pairs per process and micro-batch", min=1)
    num_epochs: int = option(1, "epochs (>= 1)", min=1)
    min_steps: int | None = option(None, "train at least this many optimizer steps: more epochs on small data "
                                   "(null: num_epochs as given)", min=1)
    prompt_loss_min_steps: int | None = option(None, "min_steps when the prompt loss is on (it trains the zero-shot "
                                               "classifier directly and over-fits sooner); null: min_steps", min=1)
    max_steps: int | None = option(None, "stop after this many steps; the schedule still spans all epochs", min=1)
    prompt_loss_weight: float | None = option(0.0, "adds this times the cross-entropy of each image against one "
                                              "prompt of every class (the zero-shot classifier trained directly, as "
                                              "CLIP-LoRA does; needs a ClassLabel label); null: auto, 1 when the "
                                              "starting model is confidently wrong on the training chips (the LoRA "
                                              "recipe), else 0", min=0)
    multi_positive: str = option("auto", "auto (= caption when captions repeat) | label | caption | off", choices=MULTI_POSITIVE)
    gradient_checkpointing: bool = option(False, "recompute activations in backward (less memory)")
    compile: bool = option(False, "torch.compile the model (GPU: faster steps after a one-off compile)")
    seed: int = option(0, "seed of init, data order, captions and augmentation", min=0)
    trainable_vision_layers: int | None = option(None, "train only the last N vision blocks + head (null: all)", min=0)
    trainable_text_layers: int | None = option(None, "train only the last N text blocks + head (null: all)", min=0)
    # LoRA (peft)
    lora: bool = option(False, "train LoRA adapters on both towers instead of all weights")
    lora_r: int = option(16, "LoRA rank", min=1)
    lora_alpha: int = option(32, "LoRA alpha (scale alpha / r)", min=1)
    lora_dropout: float = option(0.0, "LoRA dropout", min=0, lt=1)
    lora_target_modules: list = option(["qkv", "out_proj", "fc1", "fc2", "projection", "q_proj", "k_proj", "v_proj",
                                        "c_proj"], "Linear layer names that get adapters (absent names are ignored)")
    merge_lora: bool = option(False, "also save the merged model (adapters go to final/adapter)")
    # evaluation after training (train.evaluation.run_evaluation)
    eval_tasks: list = option(["retrieval", "zero_shot", "linear_probe"], "retrieval, zero_shot, linear_probe, "
                              "feature_plot", choices=EVAL_TASKS)
    eval_batch_size: int = option(64, "evaluation batch size", min=1)
    # output, logging, checkpoints, Hub
    output_dir: str = option("runs/sarclip", "run folder (checkpoints/, logs/, final/)")
    checkpoint_every: int | None = option(None, "steps between checkpoints (null: one per epoch)", min=1)
    keep_checkpoints: int = option(2, "newest checkpoints kept", min=0)
    resume: str | None = option(None, "latest or a checkpoint folder (a bare --resume is latest)")
    overwrite: bool = option(False, "start a new run in an output_dir that holds one (its checkpoints are deleted at "
                             "the start, its final/ replaced at the end); without it such a folder is refused")
    log_every: int = option(10, "steps between log lines", min=1)
    push_to_hub: str | None = option(None, "Hub repo id to upload final/ to")
    hub_private: bool = option(False, "create the Hub repo private")
    hub_base_model: str | None = option(None, "LoRA + push_to_hub: the Hub repo of the base model, which the pushed "
                                        "adapters name instead of its local folder (required for a local base)")
    num_workers: int | None = option(None, "DataLoader worker processes (null: 0 on CPU, up to 8 per GPU process)", min=0)

    BARE_FLAG_VALUES = {"resume": "latest"}  # a bare --resume continues from the latest checkpoint

    def check(self):
        check_standardize(self.standardize, allow_auto=True)
        if self.push_to_hub and self.lora and not self.hub_base_model:
            raise ValueError("push_to_hub with lora: set hub_base_model to the Hub repo id of the base model (the "
                             f"adapters otherwise name its local folder, {self.init_from or self.model!r}), so that "
                             "the pushed adapters load anywhere")
        if self.prompt_loss_weight and self.gradient_accumulation_steps > 1:
            raise ValueError("prompt_loss_weight needs gradient_accumulation_steps 1 (the cached-embedding step scores "
                             "the contrastive loss only); raise batch_size instead")
        if self.prompt_loss_weight and self.streaming:
            raise ValueError("prompt_loss_weight reads the class names from the train split in memory; with streaming: "
                             "true set it to 0")
        if self.resume and self.overwrite:
            raise ValueError("resume and overwrite contradict each other: --resume continues the run in output_dir, "
                             "--overwrite replaces it")
        if self.merge_lora and not self.lora:
            raise ValueError("merge_lora needs lora: true")
        if self.streaming:
            if self.tokenizer == "trained":
                raise ValueError("tokenizer: trained reads every caption before training; with streaming: true use "
                                 "open_clip or a tokenizer folder")
            if self.max_train_samples:
                raise ValueError("max_train_samples needs the data in memory; with streaming: true use max_steps")
            if self.standardize == "dataset":
                raise ValueError("standardize: dataset measures the train images before training; with streaming: "
                                 "true use per_image or start from a model folder whose processor has image_mean / "
                                 "image_std")

    def learning_rate_for(self, is_resnet: bool) -> float:
        if self.learning_rate is not None:
            return self.learning_rate
        if self.lora:
            return LORA_LEARNING_RATE
        return PAPER_LEARNING_RATES["resnet" if is_resnet else "vit"]
