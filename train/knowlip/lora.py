"""LoRA adapters for SCIO with peft, on SAR-KnowLIP's online towers only."""

from __future__ import annotations

import re

from peft import LoraConfig, PeftModel, get_peft_model
from torch import nn

from .run_config import ScioRunConfig

ONLINE_TOWERS = ("vision_model", "text_encoder", "fusion_encoder", "text_decoder")


def add_scio_lora(model: nn.Module, config: ScioRunConfig) -> PeftModel:
    """Wrap a `SarKnowlipModel` with LoRA on the Linear layers of its online towers whose name ends in one of
    `config.lora_target_modules` (default: every attention and MLP Linear of the ViT and BERT layers).

    The momentum encoders (`*_m`) share those layer names but get no adapters: they are not trained by gradient, and
    `momentum_update` keeps them an EMA of the online towers' effective weights W + B A. Only the adapters train;
    projections, ITM head and temperature stay as loaded (LoRA adapts a pre-trained SAR-KnowLIP).
    """
    names = [name for name, module in model.named_modules()
             if isinstance(module, nn.Linear) and name.split(".", 1)[0] in ONLINE_TOWERS
             and name.rsplit(".", 1)[-1] in config.lora_target_modules]
    if not names:
        raise ValueError(f"lora_target_modules {config.lora_target_modules} match no Linear layer of the towers "
                         f"{ONLINE_TOWERS}")
    layers = "|".join(map(re.escape, config.lora_target_modules))
    towers = "|".join(ONLINE_TOWERS)
    lora_config = LoraConfig(r=config.lora_r, lora_alpha=config.lora_alpha, lora_dropout=config.lora_dropout,
                             target_modules=rf"^({towers})\..*\.({layers})$")
    return get_peft_model(model, lora_config)


__all__ = ["ONLINE_TOWERS", "add_scio_lora"]
