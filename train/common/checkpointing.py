"""Atomic, resumable checkpoints: Accelerate state (model, optimizer, scheduler, RNG) + the trainer's position."""

from __future__ import annotations

import dataclasses
import errno
import json
import os
import shutil
from pathlib import Path

from accelerate import Accelerator

from sar_utils.atomic import write_json

STATE_FILE = "trainer_state.json"
PREFIX = "step_"


def read_json(path: str | Path):
    """Read a JSON file this package wrote; a damaged one is an error naming it."""
    try:
        return json.loads(Path(path).read_text(encoding="utf-8"))
    except json.JSONDecodeError as err:
        raise ValueError(f"{path}: damaged JSON ({err}); delete it or restore it from a checkpoint") from None


def _no_space(err: BaseException, path: Path) -> bool:
    """torch reports a full disk while saving as a RuntimeError ("... unexpected pos ..."), not as ENOSPC."""
    if isinstance(err, OSError) and err.errno == errno.ENOSPC:
        return True
    return isinstance(err, RuntimeError) and "unexpected pos" in str(err) or shutil.disk_usage(path).free < 1 << 20


@dataclasses.dataclass
class TrainerState:
    """Where training stands: optimizer steps done, the data position (epoch, batches done in that epoch) and the
    collapse guard's state (`CollapseGuard.state_dict`), so that a resumed run judges and logs as the uninterrupted
    one."""

    global_step: int = 0
    epoch: int = 0
    batches_in_epoch: int = 0
    guard: dict = dataclasses.field(default_factory=dict)


def save_checkpoint(accelerator: Accelerator, root: str | Path, state: TrainerState, keep: int,
                    protect: str | Path | None = None) -> Path:
    """Write `root/step_NNNNNNNN` atomically: everything goes to a temporary folder renamed in one `os.replace`.

    Call on every process (each saves its own RNG state). The newest `keep` checkpoints are kept, and `protect` (the
    collapse guard's best checkpoint while a collapse is suspected) is never pruned.
    """
    root = Path(root)
    final = root / f"{PREFIX}{state.global_step:08d}"
    tmp = root / f".tmp-{final.name}"
    if accelerator.is_main_process:
        shutil.rmtree(tmp, ignore_errors=True)
        tmp.mkdir(parents=True)
    accelerator.wait_for_everyone()
    try:
        accelerator.save_state(str(tmp))
        if accelerator.is_main_process:
            write_json(tmp / STATE_FILE, dataclasses.asdict(state))
    except (OSError, RuntimeError) as err:
        shutil.rmtree(tmp, ignore_errors=True)  # the previous checkpoints stay as they were
        if _no_space(err, root):
            raise OSError(errno.ENOSPC, "no space left on device", str(tmp)) from err
        raise
    accelerator.wait_for_everyone()
    if accelerator.is_main_process:
        if final.exists():
            shutil.rmtree(final)
        os.replace(tmp, final)
        for old in list_checkpoints(root)[:-keep] if keep > 0 else []:
            if protect is None or old.resolve() != Path(protect).resolve():
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
    """Restore model, optimizer, scheduler and RNG states; return the saved trainer position.

    The position must agree with the folder's name (`step_NNNNNNNN`, written in the same atomic rename): a
    `trainer_state.json` that says otherwise (edited, or copied from another checkpoint) would finish the run from the
    wrong step, and is refused before any state is loaded."""
    path = Path(path)
    try:
        state = TrainerState(**read_json(path / STATE_FILE))
    except (TypeError, ValueError) as err:
        raise ValueError(f"{path / STATE_FILE}: not a trainer state ({err}); the checkpoint is damaged") from None
    if path.name.startswith(PREFIX) and path.name[len(PREFIX):].isdigit() and \
            int(path.name[len(PREFIX):]) != state.global_step:
        raise ValueError(f"{path / STATE_FILE}: says step {state.global_step} but the checkpoint is {path.name}; the "
                         "checkpoint is inconsistent (resume from another one, or restore the file)")
    accelerator.load_state(str(path))
    return state


def claim_run_folder(output_dir: Path, outputs: tuple[str, ...], resume: bool, overwrite: bool,
                     accelerator: Accelerator, stale: tuple[str, ...] = (), resumable: bool = True) -> None:
    """Refuse an `output_dir` that holds a run (any of `outputs`, e.g. its model and checkpoints folders) unless the
    run is resumed or overwritten: a second run into a used folder would replace its model, and the old checkpoints
    would prune (or later resume in place of) the new run's. With `overwrite` the `stale` files and folders (the old
    checkpoints, logs...) are deleted now; the model is replaced when the new one is complete. `resumable`: whether
    the command has a --resume to offer."""
    used = [name for name in outputs if (output_dir / name).exists()]
    if not used or resume:
        return
    if not overwrite:
        held = ", ".join(f"{name}/" if (output_dir / name).is_dir() else name for name in used)
        resume_hint = "pass --resume to continue it, " if resumable else ""
        raise ValueError(f"{output_dir}: holds a run ({held}); {resume_hint}pass --overwrite to replace it, or choose "
                         "another output folder")
    if accelerator.is_main_process:
        for name in stale:
            path = output_dir / name
            shutil.rmtree(path, ignore_errors=True) if path.is_dir() else path.unlink(missing_ok=True)
    accelerator.wait_for_everyone()
