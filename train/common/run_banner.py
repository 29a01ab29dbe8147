"""The first line every trainer prints: how many processes run, the per-process and global batch, precision and
device, so that a launch that started fewer processes than meant (or the wrong precision) shows at once."""

from __future__ import annotations

from accelerate import Accelerator


def run_banner(accelerator: Accelerator, per_process_batch: int, accumulation: int = 1) -> str:
    """E.g. `processes: 2 (MULTI_CPU), per-process batch 32, global batch 64, precision no, device cpu`."""
    processes = accelerator.num_processes
    steps = f" x {accumulation} accumulated micro-batches" if accumulation > 1 else ""
    return (f"processes: {processes} ({accelerator.distributed_type.value}), per-process batch {per_process_batch}"
            f"{steps}, global batch {per_process_batch * accumulation * processes}, precision "
            f"{accelerator.mixed_precision}, device {accelerator.device}")
