"""Build the SARCLIP model and processor a run starts from (preset, saved folder / Hub id, or a previous stage)."""

from __future__ import annotations

import copy
from collections.abc import Iterable
from pathlib import Path

import datasets
import torch

from modeling_sarclip import (
    OPEN_CLIP_PRESETS,
    SarclipConfig,
    SarclipImageProcessor,
    SarclipModel,
    SarclipProcessor,
    SarclipTokenizer,
    train_sarclip_tokenizer,
)

from ..common.standardization import AUTO, apply_standardization
from .config import TrainConfig

# `standardize: auto` fits its linear probes on at most this many training chips (seeded sample)
AUTO_STANDARDIZATION_CHIPS = 1024


def is_preset(name: str) -> bool:
    return name.removesuffix("-quickgelu") in OPEN_CLIP_PRESETS


def preset_config(name: str, overrides: dict) -> SarclipConfig:
    """An open_clip preset with `overrides` (open_clip config keys: embed_dim, vision_cfg, text_cfg) merged in."""
    if not overrides:
        return SarclipConfig.from_preset(name)
    unknown = sorted(set(overrides) - {"embed_dim", "vision_cfg", "text_cfg"})
    if unknown:
        raise ValueError(f"model_overrides: unknown keys {unknown} (use embed_dim, vision_cfg, text_cfg)")
    base, quick = name.removesuffix("-quickgelu"), name.endswith("-quickgelu")
    merged = copy.deepcopy(OPEN_CLIP_PRESETS[base])
    merged["embed_dim"] = overrides.get("embed_dim", merged["embed_dim"])
    for key in ("vision_cfg", "text_cfg"):
        merged[key].update(overrides.get(key, {}))
    merged["quick_gelu"] = quick
    return SarclipConfig.from_open_clip_config(merged)


def build_tokenizer(config: TrainConfig, captions: Iterable[str]) -> SarclipTokenizer:
    if config.tokenizer == "open_clip":
        return SarclipTokenizer.from_bpe_file()
    if config.tokenizer == "trained":
        return train_sarclip_tokenizer(captions, vocab_size=config.tokenizer_vocab_size)
    folder = Path(config.tokenizer)
    if not folder.is_dir():
        raise ValueError(f"tokenizer must be 'open_clip', 'trained' or a tokenizer folder; {folder} is not a folder")
    return SarclipTokenizer.from_pretrained(folder)


def load_model_and_processor(
    config: TrainConfig, captions: Iterable[str] = (), train_set: datasets.Dataset | None = None
) -> tuple[SarclipModel, SarclipProcessor]:
    """The starting point of a run: `init_from` if set, else `model` (a preset -> random init, else from_pretrained).

    `captions` feeds the tokenizer when `config.tokenizer == "trained"` and the model has no tokenizer yet;
    `train_set` (None when streaming) gives the pixel statistics of `standardize: dataset` and the labelled chips
    `standardize: auto` measures on.
    """
    images = None if train_set is None else train_set["image"]
    source = config.init_from or config.model
    if config.init_from or not is_preset(source):
        if config.init_from and not Path(config.init_from).is_dir():
            raise FileNotFoundError(f"init_from: {config.init_from} is not a folder (a previous stage's output)")
        if config.model_overrides and not config.init_from:
            raise ValueError(f"model_overrides only apply to presets (random init), not to the saved model {source}")
        if config.model_overrides:
            print(f"init_from {source}: model_overrides are ignored (the saved model defines the architecture)")
        model = SarclipModel.from_pretrained(source)
        if (Path(source) / "processor_config.json").is_file() or not Path(source).is_dir():
            processor = SarclipProcessor.from_pretrained(source)
            if config.native_resolution:
                print(f"native_resolution: {source} brings its own processor, whose geometry is kept")
            mode = config.standardize
            if mode == AUTO:
                mode = auto_standardization(model, processor, train_set, source)
            apply_standardization(processor.image_processor, mode, images, source)
            return model, processor
        processor = new_processor(config, model.config, captions, images)
        if len(processor.tokenizer) != model.config.text_config.vocab_size:
            raise ValueError(f"{source}: its text tower has {model.config.text_config.vocab_size} token embeddings "
                             f"but the tokenizer ({config.tokenizer}) has {len(processor.tokenizer)} tokens; set "
                             "tokenizer to the folder of the tokenizer the model was trained with")
        return model, processor
    model_config = preset_config(source, config.model_overrides)
    if config.context_length:
        model_config.text_config.context_length = config.context_length
    processor = new_processor(config, model_config, captions, images)
    tokenizer = processor.tokenizer
    # a trained tokenizer has its own vocabulary size and special-token ids: size the text tower to it
    model_config.text_config.vocab_size = len(tokenizer)
    model_config.text_config.bos_token_id = tokenizer.bos_token_id
    model_config.text_config.eos_token_id = tokenizer.eos_token_id
    return SarclipModel(model_config), processor


def new_processor(config: TrainConfig, model_config: SarclipConfig, captions: Iterable[str],
                  images=None) -> SarclipProcessor:
    tokenizer = build_tokenizer(config, captions)
    tokenizer.model_max_length = model_config.text_config.context_length
    image_processor = SarclipImageProcessor(size=model_config.vision_config.image_size,
                                            do_resize=not config.native_resolution)
    if config.standardize == AUTO:
        print("standardize: auto has no starting model to measure (a new model, or a folder without a processor): "
              "none")
    apply_standardization(image_processor, None if config.standardize == AUTO else config.standardize, images)
    return SarclipProcessor(image_processor=image_processor, tokenizer=tokenizer)



def auto_standardization(model: SarclipModel, processor: SarclipProcessor, train_set: datasets.Dataset | None,
                         source: str) -> str | None:
    """`standardize: auto` for fine-tuning `source` on labelled chips: its processor's own setting, or per_image
    (each chip mapped to the base's `pixel_reference`), whichever gives the starting model the higher linear-probe
    accuracy on a validation split of the training chips (`train_linear_probe`, at most
    `AUTO_STANDARDIZATION_CHIPS`, seeded; ties keep the base's setting). None (keep it) when there is nothing to
    choose or to measure on.

    Why measured, not fixed: the quickstart model gives every dark MSTAR chip one embedding as it is (validation
    probe 28 % vs 50 % mapped; the LoRA run collapses), while on OpenSARShip chips, as dark, its own radiometry is
    the better start (61.4 % vs 59.1 %; LoRA linear probe 64-67 % vs 58-60 % mapped): docs/EXPERIMENTS.md. The chips'
    brightness alone does not tell the two apart (both about -0.8 in [-1, 1] against the base's -0.30).
    """
    from ..evaluation.encode import encode_images, eval_mode
    from ..evaluation.linear_probe import train_linear_probe

    own = processor.image_processor.standardization
    if own == "per_image":
        return None
    if train_set is None or not isinstance(train_set.features.get("label"), datasets.ClassLabel):
        print(f"standardize: auto keeps {source}'s setting ({own}): it needs labelled training chips to measure on")
        return None
    rows = torch.randperm(len(train_set), generator=torch.Generator().manual_seed(0))[:AUTO_STANDARDIZATION_CHIPS]
    chips = train_set.select(sorted(rows.tolist()))
    images, labels = chips["image"], chips["label"]
    accuracy = {}
    mapped = copy.deepcopy(processor)
    apply_standardization(mapped.image_processor, "per_image", None, source)
    for mode, candidate in ((own, processor), ("per_image", mapped)):
        with eval_mode(model):
            features = encode_images(model, candidate, images, 64)
        probe = train_linear_probe(features, labels, train_set.features["label"].num_classes)
        accuracy[mode] = max(probe.val_accuracy.values())
    chosen = "per_image" if accuracy["per_image"] > accuracy[own] else own
    print(f"standardize: auto chose {chosen} (the starting model's linear probe on a validation split of "
          f"{len(chips)} training chips: {accuracy[own]:.1f} % with its own setting ({own}), "
          f"{accuracy['per_image']:.1f} % per_image)")
    return chosen
