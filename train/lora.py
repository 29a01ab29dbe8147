"""LoRA adapters on both SARCLIP towers with peft."""

from __future__ import annotations

from peft import LoraConfig, PeftModel, get_peft_model
from torch import nn

from .config import TrainConfig


def add_lora(model: nn.Module, config: TrainConfig) -> PeftModel:
    """Wrap `model` with LoRA on the Linear layers named in `config.lora_target_modules` (suffix match).

    Defaults cover both towers: the fused attention projection `qkv` and `out_proj`, the MLP `fc1`/`fc2`, and the
    ResNet attention pool's `q_proj`/`k_proj`/`v_proj`/`c_proj`. Names absent from the model are ignored; at least
    one must exist. Only the adapters train (the base, including `logit_scale`, is frozen).
    """
    present = {name.rsplit(".", 1)[-1] for name, module in model.named_modules() if isinstance(module, nn.Linear)}
    targets = [name for name in config.lora_target_modules if name in present]
    if not targets:
        raise ValueError(
            f"lora_target_modules {config.lora_target_modules} match no Linear layer; the model has {sorted(present)}"
        )
    lora_config = LoraConfig(
        r=config.lora_r, lora_alpha=config.lora_alpha, lora_dropout=config.lora_dropout, target_modules=targets
    )
    return get_peft_model(model, lora_config)
