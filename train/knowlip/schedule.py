"""SCIO's learning-rate schedule and ALBEF's distillation-weight warm-up, as functions of the optimizer step.

Learning rate (paper 4.1: "linearly warmed up from 1e-6 over 3000 steps, then decays to a minimum of 1e-6 following
a rate of 0.9"): linear from `warmup_lr` to `learning_rate` over `warmup_steps`, then
`max(min_lr, learning_rate * decay_rate ** ((step - warmup_steps) / steps_per_epoch))`: x0.9 per epoch's worth of
steps counted from the end of the warm-up (our choice: continuous, so the rate never jumps; BLIP's staircase
decays once per epoch from epoch 0, which drops the rate abruptly after a warm-up that ends mid-run).

Alpha (ALBEF `train`: alpha * min(1, i / len(data_loader)) in the first epoch): linear from 0 to `alpha` over
`alpha_warmup_steps` optimizer steps, then constant.
"""

from __future__ import annotations

import math


def learning_rate_at(step: int, learning_rate: float, warmup_steps: int, warmup_lr: float, min_lr: float,
                     decay_rate: float, steps_per_epoch: int) -> float:
    """The learning rate of optimizer step `step` (0-based)."""
    if step < warmup_steps:
        return warmup_lr + (learning_rate - warmup_lr) * step / warmup_steps
    return max(min_lr, learning_rate * decay_rate ** ((step - warmup_steps) / steps_per_epoch))


def alpha_at(step: int, alpha: float, alpha_warmup_steps: int) -> float:
    """The momentum-distillation weight of optimizer step `step` (0-based)."""
    return alpha if alpha_warmup_steps <= 0 else alpha * min(1.0, step / alpha_warmup_steps)


def steps_per_epoch(num_images: int, batch_size: int, num_processes: int) -> int:
    """Optimizer steps of one epoch: every process takes `batch_size` images per step."""
    return math.ceil(num_images / (batch_size * num_processes))


def check_warmup(warmup_steps: int, total_steps: int) -> None:
    """A warm-up longer than the run never reaches the peak rate: an error naming both numbers."""
    if warmup_steps > total_steps:
        raise ValueError(f"warmup_steps={warmup_steps} is longer than the run ({total_steps} optimizer steps): the "
                         f"learning rate would never reach its peak; set --warmup_steps to at most {total_steps} "
                         f"(e.g. {max(1, total_steps // 10)}, a tenth of the run)")


__all__ = ["alpha_at", "check_warmup", "learning_rate_at", "steps_per_epoch"]
