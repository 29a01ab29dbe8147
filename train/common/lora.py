"""LoRA adapters with peft, for both model families: one helper taking plain arguments."""

from __future__ import annotations

import re
from collections.abc import Sequence

from peft import LoraConfig, PeftModel, get_peft_model
from torch import nn


def add_lora(
    model: nn.Module,
    target_modules: Sequence[str],
    r: int = 8,
    alpha: int = 16,
    dropout: float = 0.0,
    towers: Sequence[str] | None = None,
    modules_to_save: Sequence[str] | None = None,
) -> PeftModel:
    """Wrap `model` with LoRA on its Linear layers whose name ends in one of `target_modules`.

    `towers` limits the adapters to the sub-modules with those top-level names (SAR-KnowLIP: the online towers, so
    that the momentum encoders, which share the layer names, get none). Names absent from the model are ignored; at
    least one Linear layer must match. Only the adapters train, and the `modules_to_save` (e.g. a new classification
    head), which are trained in full and saved with the adapters.
    """
    linears = [name for name, module in model.named_modules() if isinstance(module, nn.Linear)
               and (towers is None or name.split(".", 1)[0] in towers)]
    present = {name.rsplit(".", 1)[-1] for name in linears}
    targets = [name for name in target_modules if name in present]
    if not targets:
        where = f" of the towers {list(towers)}" if towers else ""
        raise ValueError(f"lora_target_modules {list(target_modules)} match no Linear layer{where}; "
                         f"the model has {sorted(present)}")
    layers = "|".join(map(re.escape, targets))
    prefix = rf"({'|'.join(map(re.escape, towers))})\..*" if towers else r"(.*\.)?"
    lora_config = LoraConfig(r=r, lora_alpha=alpha, lora_dropout=dropout, target_modules=rf"^{prefix}({layers})$",
                             modules_to_save=list(modules_to_save) if modules_to_save else None)
    return get_peft_model(model, lora_config)
