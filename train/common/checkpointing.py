"""Atomic, resumable checkpoints: Accelerate state (model, optimizer, scheduler, RNG) + the trainer's position."""

from __future__ import annotations

import dataclasses
import json
import os
import shutil
from pathlib import Path

from accelerate import Accelerator

STATE_FILE = "trainer_state.json"
PREFIX = "step_"


@dataclasses.dataclass
class TrainerState:
    """Where training stands: optimizer steps done, and the data position (epoch, batches done in that epoch)."""

    global_step: int = 0
    epoch: int = 0
    batches_in_epoch: int = 0


def save_checkpoint(accelerator: Accelerator, root: str | Path, state: TrainerState, keep: int) -> Path:
    """Write `root/step_NNNNNNNN` atomically: everything goes to a temporary folder renamed in one `os.replace`.

    Call on every process (each saves its own RNG state). The newest `keep` checkpoints are kept.
    """
    root = Path(root)
    final = root / f"{PREFIX}{state.global_step:08d}"
    tmp = root / f".tmp-{final.name}"
    if accelerator.is_main_process:
        shutil.rmtree(tmp, ignore_errors=True)
        tmp.mkdir(parents=True)
    accelerator.wait_for_everyone()
    accelerator.save_state(str(tmp))
    accelerator.wait_for_everyone()
    if accelerator.is_main_process:
        (tmp / STATE_FILE).write_text(json.dumps(dataclasses.asdict(state)), encoding="utf-8")
        if final.exists():
            shutil.rmtree(final)
        os.replace(tmp, final)
        for old in list_checkpoints(root)[:-keep] if keep > 0 else []:
            shutil.rmtree(old)
    accelerator.wait_for_everyone()
    return final


def list_checkpoints(root: str | Path) -> list[Path]:
    """Complete checkpoints under `root`, oldest first (temporary folders of interrupted writes are ignored)."""
    root = Path(root)
    if not root.is_dir():
        return []
    return sorted(p for p in root.iterdir() if p.name.startswith(PREFIX) and (p / STATE_FILE).is_file())


def resolve_checkpoint(resume: str, root: str | Path) -> Path:
    """`"latest"` -> the newest checkpoint under `root`; otherwise `resume` must be a checkpoint folder."""
    if resume == "latest":
        checkpoints = list_checkpoints(root)
        if not checkpoints:
            raise FileNotFoundError(f"--resume latest: no checkpoint under {root}")
        return checkpoints[-1]
    path = Path(resume)
    if not (path / STATE_FILE).is_file():
        raise FileNotFoundError(f"--resume {resume}: not a checkpoint folder (no {STATE_FILE})")
    return path


def load_checkpoint(accelerator: Accelerator, path: Path) -> TrainerState:
    """Restore model, optimizer, scheduler and RNG states; return the saved trainer position."""
    accelerator.load_state(str(path))
    return TrainerState(**json.loads((path / STATE_FILE).read_text(encoding="utf-8")))
