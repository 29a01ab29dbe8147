"""`fit_scio(config)`: build the data, tokenizer, model (and LoRA) a `ScioRunConfig` names and run SCIO."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import datasets
from accelerate import Accelerator
from accelerate.utils import set_seed
from transformers import BertTokenizer

from dataset_scripts.loading import load_image_text_data
from modeling_knowlip import SarKnowlipConfig, SarKnowlipModel, SarKnowlipProcessor, train_wordpiece_tokenizer
from modeling_knowlip.configuration_knowlip import PRESETS
from modeling_sarclip import SarclipImageProcessor

from ..common.hub import push_model_dir
from ..common.lora import add_lora
from ..common.run_log import trainer_accelerator
from ..common.standardization import apply_standardization
from .run_config import ScioRunConfig
from .schedule import check_warmup, steps_per_epoch
from .scio_trainer import ScioTrainer
from .subtexts import scio_subtexts
from .synthetic_texts import synthetic_scio_dataset
from .towers import is_sarclip_folder, sarclip_vision_tower

RUN_CONFIG_FILE = "scio_config.yaml"
# LoRA goes on the online towers only: the momentum encoders (`*_m`) share their layer names but are not trained by
# gradient; `momentum_update` keeps them an EMA of the online towers' effective weights W + B A.
ONLINE_TOWERS = ("vision_model", "text_encoder", "fusion_encoder", "text_decoder")
TOKENIZER_DIR = "tokenizer"
BASE_MODEL_DIR = "base_model"


@dataclasses.dataclass
class ScioRunResult:
    """The final text version (`texts`) and the model folder (full model, or LoRA adapters on `base_model_dir`)."""

    texts: datasets.Dataset
    model_dir: Path
    base_model_dir: Path | None


def load_scio_dataset(config: ScioRunConfig) -> datasets.Dataset:
    """The SCIO training images and their sub-texts, as `config.data` names them."""
    def synthetic() -> datasets.DatasetDict:
        return datasets.DatasetDict({config.split: synthetic_scio_dataset(
            config.synthetic_num_images, config.synthetic_image_size, config.seed)})

    loaded = load_image_text_data(config.data, synthetic, allow_outside_data=config.allow_outside_data)
    if config.split not in loaded:
        raise ValueError(f"{config.data}: no split {config.split!r} (splits: {list(loaded)})")
    dataset = loaded[config.split]
    if config.max_train_samples:
        dataset = dataset.select(range(min(config.max_train_samples, len(dataset))))
    if config.image_column not in dataset.column_names:
        raise ValueError(f"{config.data}: no image column {config.image_column!r} (columns: {dataset.column_names})")
    texts, rule = scio_subtexts(dataset, config.subtexts_column)
    print(f"SCIO data: {len(dataset)} images of {config.data} ({config.split}); sub-texts from {rule!r} "
          f"({sum(map(len, texts)) / len(texts):.1f} per image, train/knowlip/subtexts.py)")
    # a ClassLabel `label` is kept: it names the positive groups (ScioConfig.positive_groups)
    keep = [config.image_column] + (["label"] if isinstance(dataset.features.get("label"), datasets.ClassLabel) else [])
    return dataset.select_columns(keep).add_column(config.subtexts_column, texts)


def _tokenizer(config: ScioRunConfig, accelerator: Accelerator, dataset: datasets.Dataset) -> BertTokenizer:
    """A tokenizer folder, or a WordPiece trained once by the main process (all processes load the same files)."""
    if config.tokenizer != "trained":
        if not Path(config.tokenizer).is_dir():
            raise ValueError(f"tokenizer must be 'trained' or a tokenizer folder; {config.tokenizer} is not a folder")
        return BertTokenizer.from_pretrained(config.tokenizer)
    folder = Path(config.output_dir) / TOKENIZER_DIR
    if accelerator.is_main_process and not folder.is_dir():
        corpus = [" ".join(text) for text in dataset[config.subtexts_column]]
        train_wordpiece_tokenizer(corpus, vocab_size=config.tokenizer_vocab_size).save_pretrained(folder)
    accelerator.wait_for_everyone()
    return BertTokenizer.from_pretrained(folder)


def load_scio_model(config: ScioRunConfig, accelerator: Accelerator,
                    dataset: datasets.Dataset) -> tuple[SarKnowlipModel, SarKnowlipProcessor]:
    """A preset (random init, seeded), a saved folder, or ViT + BERT tower folders, with its processor (or a new one
    on the chosen tokenizer)."""
    if config.model == "towers":
        for folder in (config.vision_tower, config.text_tower):
            if not Path(folder).is_dir():
                raise ValueError(f"model 'towers': {folder} is not a folder")
        tokenizer = BertTokenizer.from_pretrained(
            config.text_tower if config.tokenizer == "trained" else config.tokenizer)
        set_seed(config.seed)
        vision, projection = config.vision_tower, None
        if is_sarclip_folder(config.vision_tower):  # SARCLIP's ViT = a ViT with ln_pre (train/knowlip/towers.py)
            vision_config, state, projection = sarclip_vision_tower(config.vision_tower)
            vision = (vision_config, state)
            if projection.shape[0] != config.model_overrides.get("embed_dim", SarKnowlipConfig.embed_dim):
                projection = None  # another ITC width: the projection starts new
        model = SarKnowlipModel.from_vision_text_pretrained(
            vision, config.text_tower, config.num_fusion_layers, vision_projection=projection,
            cls_token_id=tokenizer.cls_token_id,
            sep_token_id=tokenizer.sep_token_id, mask_token_id=tokenizer.mask_token_id,
            pad_token_id=tokenizer.pad_token_id, **config.model_overrides)
        if len(tokenizer) > model.config.text_config.vocab_size:
            raise ValueError(f"tokenizer has {len(tokenizer)} tokens but {config.text_tower} only "
                             f"{model.config.text_config.vocab_size} embeddings")
    elif config.model in PRESETS:
        tokenizer = _tokenizer(config, accelerator, dataset)
        set_seed(config.seed)
        model = SarKnowlipModel(SarKnowlipConfig.from_preset(config.model, tokenizer=tokenizer,
                                                             **config.model_overrides))
    else:
        if not Path(config.model).is_dir():
            raise ValueError(f"model must be a preset {sorted(PRESETS)}, a model folder or 'towers'; {config.model} is "
                             "none of these")
        if config.model_overrides:
            raise ValueError(f"model_overrides only apply to presets, not to the saved model {config.model}")
        model = SarKnowlipModel.from_pretrained(config.model)
        if (Path(config.model) / "processor_config.json").is_file():
            processor = SarKnowlipProcessor.from_pretrained(config.model)
            apply_standardization(processor.image_processor, config.standardize, dataset[config.image_column],
                                  config.model)
            return model, processor
        tokenizer = _tokenizer(config, accelerator, dataset)
        if len(tokenizer) != model.config.text_config.vocab_size:
            raise ValueError(f"tokenizer has {len(tokenizer)} tokens but {config.model} has a vocabulary of "
                             f"{model.config.text_config.vocab_size}")
    image_processor = SarclipImageProcessor(size=model.config.vision_config.image_size)
    apply_standardization(image_processor, config.standardize, dataset[config.image_column])
    return model, SarKnowlipProcessor(image_processor=image_processor, tokenizer=tokenizer)


def fit_scio(config: ScioRunConfig, accelerator: Accelerator | None = None) -> ScioRunResult:
    """Run (or resume) SCIO as configured; everything goes under `config.output_dir`.

    With LoRA the model folder holds the adapters (`PeftModel.from_pretrained(base, model_dir)`); a preset's random
    base is saved to `output_dir/base_model` first so that the adapters have a base to load onto.
    """
    accelerator = accelerator or trainer_accelerator(config, config.output_dir)
    output_dir = Path(config.output_dir)
    dataset = load_scio_dataset(config)
    # before building the model: a warm-up that does not fit the run is a config error
    check_warmup(config.warmup_steps, sum(config.stage_epochs) * steps_per_epoch(
        len(dataset), config.batch_size, accelerator.num_processes))
    model, processor = load_scio_model(config, accelerator, dataset)
    base_dir = None
    if config.lora:
        base_dir = Path(config.model)
        if config.model in PRESETS or config.model == "towers":
            base_dir = output_dir / BASE_MODEL_DIR
            if accelerator.is_main_process and not base_dir.is_dir():
                model.save_pretrained(base_dir)
            accelerator.wait_for_everyone()
            model = SarKnowlipModel.from_pretrained(base_dir)  # the same weights, and the adapters record this base
        model = add_lora(model, config.lora_target_modules, config.lora_r, config.lora_alpha, config.lora_dropout,
                         towers=ONLINE_TOWERS)
    trainer = ScioTrainer(model, processor, dataset, config, accelerator)
    trainer.check_run_folder()  # before the config file of a run in this folder is rewritten
    if accelerator.is_main_process:
        output_dir.mkdir(parents=True, exist_ok=True)
        config.save_yaml(output_dir / RUN_CONFIG_FILE)
    texts = trainer.run()
    if accelerator.is_main_process and config.push_to_hub:
        push_model_dir(output_dir / "model", config.push_to_hub, private=config.hub_private)
    return ScioRunResult(texts=texts, model_dir=output_dir / "model", base_model_dir=base_dir)


__all__ = ["ONLINE_TOWERS", "ScioRunResult", "fit_scio", "load_scio_dataset", "load_scio_model"]
