"""Build the SARCLIP model and processor a run starts from (preset, saved folder / Hub id, or a previous stage)."""

from __future__ import annotations

import copy
from collections.abc import Iterable
from pathlib import Path

from modeling_sarclip import (
    OPEN_CLIP_PRESETS,
    SarclipConfig,
    SarclipImageProcessor,
    SarclipModel,
    SarclipProcessor,
    SarclipTokenizer,
    train_sarclip_tokenizer,
)

from ..common.standardization import apply_standardization
from .config import TrainConfig


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
    config: TrainConfig, captions: Iterable[str] = (), images=None
) -> tuple[SarclipModel, SarclipProcessor]:
    """The starting point of a run: `init_from` if set, else `model` (a preset -> random init, else from_pretrained).

    `captions` feeds the tokenizer when `config.tokenizer == "trained"` and the model has no tokenizer yet; `images`
    (the train images) give the pixel statistics when `config.standardize` is "dataset".
    """
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
            apply_standardization(processor.image_processor, config.standardize, images, source)
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
    apply_standardization(image_processor, config.standardize, images)
    return SarclipProcessor(image_processor=image_processor, tokenizer=tokenizer)

