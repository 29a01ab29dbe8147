"""`RunLog`: where every trainer's metrics go (SARCLIP `fit`, SCIO, KnowLIP `finetune`): one JSON object per line in
`OUTPUT_DIR/metrics.jsonl` (`{"step": N, ...}`), and the numbers also to the Accelerate trackers the Accelerator was
built with (`trainer_accelerator`: `report_to`, TensorBoard under `OUTPUT_DIR/logs` or W&B), so training and
evaluation curves sit side by side. Only the main process writes.

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
LOGS = "logs"  # the trackers' folder in OUTPUT_DIR


def trainer_accelerator(options, output_dir: str | Path) -> Accelerator:
    """The Accelerator a trainer runs with when the caller gives none: `options.mixed_precision` and the
    `options.report_to` tracker under `output_dir/logs` (`train.common.config.TrainingOptions`). Schedules step once
    per optimizer step, whatever the process count (`step_scheduler_with_optimizer=False`)."""
    return Accelerator(mixed_precision=options.mixed_precision,
                       log_with=None if options.report_to == "none" else options.report_to,
                       project_dir=str(Path(output_dir) / LOGS), step_scheduler_with_optimizer=False)


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
            kept = [] if keep is None else [line for line, record in self._records() if keep(record)]
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

    def _records(self) -> list[tuple[str, dict]]:
        """(line, record) of the log so far; a line cut by a kill is not JSON: it and what follows are dropped."""
        if not self.path.is_file():
            return []
        records = []
        for line in self.path.read_text(encoding="utf-8").splitlines():
            try:
                records.append((line, json.loads(line)))
            except json.JSONDecodeError:
                break
        return records


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


__all__ = ["LOGS", "METRICS_FILE", "RunLog", "flat_numbers", "read_run_log", "trainer_accelerator"]
