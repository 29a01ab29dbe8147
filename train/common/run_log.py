"""`RunLog`: where every trainer's metrics go (SARCLIP `fit`, SCIO, KnowLIP `finetune`): one JSON object per line in
`OUTPUT_DIR/metrics.jsonl` (`{"step": N, ...}`), and the numbers also to the Accelerate trackers the Accelerator was
built with (`report_to`: TensorBoard under `OUTPUT_DIR/logs`, or W&B), so training and evaluation curves sit side by
side. Only the main process writes.

Trainers log a record before the checkpoint that covers it; a resumed run keeps the records its checkpoint covers
(`keep`) and drops the later ones (written by the killed run after that checkpoint, and written again now), so the
file reads as one uninterrupted run.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable
from pathlib import Path

from accelerate import Accelerator

from sar_utils.atomic import atomic_file

METRICS_FILE = "metrics.jsonl"


class RunLog:
    def __init__(self, accelerator: Accelerator, output_dir: str | Path, tracker_config: dict | None = None,
                 keep: Callable[[dict], bool] | None = None, step: int = 0):
        """`keep`: None starts a new log; on resume, which records the checkpoint covers (e.g. `record["step"] <=
        state.global_step`). `step`: the step the run starts from. `tracker_config`: the run's settings shown by the
        trackers (TensorBoard's hparams take scalars: other values are shown as text)."""
        self.accelerator = accelerator
        self.path = Path(output_dir) / METRICS_FILE
        if accelerator.is_main_process:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            kept = [] if keep is None else [line for line in self._lines() if keep(json.loads(line))]
            with atomic_file(self.path) as tmp:
                tmp.write_text("".join(line + "\n" for line in kept), encoding="utf-8")
        if accelerator.log_with:
            settings = {key: value if isinstance(value, (int, float, str, bool)) else str(value)
                        for key, value in (tracker_config or {}).items()}
            accelerator.init_trackers(Path(output_dir).name, config=settings)
        self.step = step

    def log(self, record: dict, step: int) -> None:
        """Append `record` at optimizer step `step`; its finite numbers go to the trackers too."""
        numbers = {key: value for key, value in record.items() if isinstance(value, (int, float))
                   and not isinstance(value, bool) and math.isfinite(value)}
        self.accelerator.log(numbers, step=step)
        self.step = step
        if self.accelerator.is_main_process:
            with open(self.path, "a", encoding="utf-8") as log:
                log.write(json.dumps({"step": step, **record}) + "\n")

    def close(self) -> None:
        """Flush and close the trackers (the JSON lines are written as they come)."""
        if self.accelerator.log_with:
            self.accelerator.end_training()

    def _lines(self) -> list[str]:
        if not self.path.is_file():
            return []
        # a line cut by a kill is not JSON: it and what follows are dropped with the rest after the resume step
        lines = []
        for line in self.path.read_text(encoding="utf-8").splitlines():
            try:
                json.loads(line)
            except json.JSONDecodeError:
                break
            lines.append(line)
        return lines


def flat_numbers(results: dict, prefix: str) -> dict[str, float]:
    """The numbers of a nested results dict as `prefix/key/subkey` entries (e.g. `eval/vqa/per_task/target count`)."""
    flat = {}
    for key, value in results.items():
        if isinstance(value, dict):
            flat |= flat_numbers(value, f"{prefix}/{key}")
        elif isinstance(value, (int, float)) and not isinstance(value, bool):
            flat[f"{prefix}/{key}"] = value
    return flat


def read_run_log(output_dir: str | Path) -> list[dict]:
    """The records of `OUTPUT_DIR/metrics.jsonl`, in order."""
    path = Path(output_dir) / METRICS_FILE
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()] if path.is_file() else []


__all__ = ["METRICS_FILE", "RunLog", "flat_numbers", "read_run_log"]
