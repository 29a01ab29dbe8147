"""SCIO's step arithmetic and ALBEF's distillation-weight warm-up, as functions of the optimizer step (the learning
rate schedule, "scio", lives with every trainer's in `train.common.schedules`).

Alpha (ALBEF `train`: alpha * min(1, i / len(data_loader)) in the first epoch): linear from 0 to `alpha` over
`alpha_warmup_steps` optimizer steps, then constant.
"""

from __future__ import annotations

import math


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


__all__ = ["alpha_at", "check_warmup", "steps_per_epoch"]
