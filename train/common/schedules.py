"""The learning-rate schedules of every trainer, by name, in one place: transformers' schedules through
`transformers.get_scheduler` ("cosine": linear warm-up from 0, then half a cosine down to 0, SARCLIP `fit` and KnowLIP
`finetune`; "linear", "constant_with_warmup", ...) and SCIO's paper schedule, "scio" (`scio_learning_rate`).

Every schedule is a `LambdaLR` over the optimizer step: the trainer steps it once per optimizer step and registers
it for checkpointing, so a resumed run continues it exactly.

SCIO (paper 4.1: "linearly warmed up from 1e-6 over 3000 steps, then decays to a minimum of 1e-6 following a rate of
0.9"): linear from `warmup_lr` to the peak over `warmup_steps`, then `max(min_lr, peak * decay_rate ** ((step -
warmup_steps) / steps_per_epoch))`: x0.9 per epoch's worth of steps counted from the end of the warm-up (our choice:
continuous, so the rate never jumps; BLIP's staircase decays once per epoch from epoch 0, which drops the rate
abruptly after a warm-up that ends mid-run).
"""

from __future__ import annotations

import torch
from transformers import get_scheduler


def scio_learning_rate(step: int, learning_rate: float, warmup_steps: int, warmup_lr: float, min_lr: float,
                       decay_rate: float, steps_per_epoch: int) -> float:
    """The learning rate of SCIO's optimizer step `step` (0-based)."""
    if step < warmup_steps:
        return warmup_lr + (learning_rate - warmup_lr) * step / warmup_steps
    return max(min_lr, learning_rate * decay_rate ** ((step - warmup_steps) / steps_per_epoch))


def build_scheduler(name: str, optimizer: torch.optim.Optimizer, warmup_steps: int, total_steps: int,
                    **scio_settings) -> torch.optim.lr_scheduler.LambdaLR:
    """The schedule `name` over `total_steps` optimizer steps. "scio" takes `warmup_lr`, `min_lr`, `decay_rate` and
    `steps_per_epoch` (`scio_learning_rate`; its peak is the optimizer's learning rate); any other name is
    `transformers.get_scheduler`'s."""
    if name != "scio":
        return get_scheduler(name, optimizer, num_warmup_steps=warmup_steps, num_training_steps=total_steps)
    peak = optimizer.defaults["lr"]
    return torch.optim.lr_scheduler.LambdaLR(
        optimizer, lambda step: scio_learning_rate(step, peak, warmup_steps, **scio_settings) / peak)


__all__ = ["build_scheduler", "scio_learning_rate"]
