"""The one home of atomic writes (datasets, model folders, checkpoints, results files, converter outputs).

Everything is written into a temporary folder (or file) beside the output, on the same filesystem, and renamed into
place only when complete: a failed or killed writer never leaves a half-written output nor destroys a good one. The
temporary folders carry the writer's process id (``.tmp-<out>-<pid>-*``, ``.old-<out>-<pid>``): a failed writer
removes its own, and the next writer of the same output reaps those of dead processes (``reap_leftovers``), putting a
previous output back if a writer was killed between its two renames. A full disk is one ``OSError(ENOSPC)`` naming
the output (``disk_full_error``).
"""

from __future__ import annotations

import contextlib
import errno
import json
import os
import re
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # another user's process
        return True
    return True


def reap_leftovers(out_dir: str | Path) -> None:
    """Clean up after writers of ``out_dir`` (on this machine) whose process is gone: their staging folders are
    removed, and a previous output they had moved aside is put back when ``out_dir`` is missing (removed otherwise).
    Folders of running processes, e.g. a concurrent build, are left alone."""
    out_dir = Path(out_dir)
    name = re.escape(out_dir.name)
    leftover = re.compile(rf"\.tmp-{name}-(\d+)-[a-z0-9_]+|\.old-{name}-(\d+)")
    if not out_dir.parent.is_dir():
        return
    for entry in sorted(out_dir.parent.iterdir()):
        match = leftover.fullmatch(entry.name)
        if match is None or _alive(int(match[1] or match[2])):
            continue
        if match[2] and not out_dir.exists():
            os.replace(entry, out_dir)
        else:
            shutil.rmtree(entry, ignore_errors=True)


def staging_folder(out_dir: str | Path) -> Path:
    """A new empty temporary folder beside ``out_dir`` (same filesystem: the final rename is atomic), named after
    this process; leftovers of killed writers of ``out_dir`` are reaped first (``reap_leftovers``)."""
    out_dir = Path(out_dir)
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    reap_leftovers(out_dir)
    staging = Path(tempfile.mkdtemp(prefix=f".tmp-{out_dir.name}-{os.getpid()}-", dir=out_dir.parent))
    staging.chmod(0o777 & ~_umask())  # mkdtemp makes it 0700; the output is renamed from it and keeps its mode
    return staging


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def _link_or_copy(source: str | Path, target: str | Path) -> None:
    try:
        os.link(source, target, follow_symlinks=False)
    except OSError:  # a filesystem without hard links
        shutil.copy2(source, target, follow_symlinks=False)


def replace_folder(staging: Path, out_dir: str | Path, keep_other_entries: bool = False) -> None:
    """Move the complete ``staging`` folder to ``out_dir``; an existing ``out_dir`` is replaced only now, by two
    renames (the old one aside to ``.old-<out>-<pid>``, then ``staging`` into place) and removed afterwards.

    ``keep_other_entries``: entries of the old folder that ``staging`` does not have (e.g. an LLM cache) are carried
    over to the new one (hard links, so the old folder stays whole until the renames) instead of being deleted.
    """
    out_dir = Path(out_dir)
    if out_dir.exists() and not out_dir.is_dir():
        raise NotADirectoryError(f"{out_dir}: the output path is a file, not a folder")
    if out_dir.is_dir():
        if keep_other_entries:
            for entry in out_dir.iterdir():
                target = staging / entry.name
                if target.exists():
                    continue
                if entry.is_dir() and not entry.is_symlink():
                    shutil.copytree(entry, target, symlinks=True, copy_function=_link_or_copy)
                else:
                    _link_or_copy(entry, target)
        old = out_dir.with_name(f".old-{out_dir.name}-{os.getpid()}")
        os.replace(out_dir, old)
        os.replace(staging, out_dir)
        shutil.rmtree(old)
    else:
        os.replace(staging, out_dir)


def _is_disk_full(err: BaseException | None) -> bool:
    seen = set()
    while err is not None and id(err) not in seen:
        seen.add(id(err))
        if isinstance(err, OSError) and (err.errno == errno.ENOSPC or "No space left on device" in str(err)):
            return True
        err = err.__cause__ or err.__context__
    return False


@contextlib.contextmanager
def disk_full_error(out_dir: str | Path):
    """A full disk anywhere in the block (datasets wraps it in DatasetGenerationError; pyarrow may drop the errno)
    becomes one ``OSError(ENOSPC, ..., out_dir)``; the CLI prints it as "no space left on device while writing"."""
    try:
        yield
    except Exception as err:
        if not _is_disk_full(err):
            raise
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(out_dir)) from err


@contextlib.contextmanager
def atomic_folder(out_dir: str | Path, keep_other_entries: bool = False) -> Iterator[Path]:
    """``with atomic_folder(out) as tmp: write into tmp`` -> ``out`` appears (or is replaced) only when the block
    finishes; an error removes ``tmp`` and leaves a previous ``out`` as it was."""
    staging = staging_folder(out_dir)
    try:
        with disk_full_error(out_dir):
            yield staging
        replace_folder(staging, out_dir, keep_other_entries=keep_other_entries)
    finally:
        shutil.rmtree(staging, ignore_errors=True)


@contextlib.contextmanager
def atomic_file(path: str | Path) -> Iterator[Path]:
    """``with atomic_file(out) as tmp: write tmp`` -> ``out`` appears (or is replaced) in one rename when the block
    finishes; an error removes ``tmp`` and leaves a previous ``out`` as it was. ``tmp`` keeps ``out``'s suffix (for
    writers that pick the format from it)."""
    path = Path(path)
    tmp = path.with_name(f".tmp-{os.getpid()}-{path.name}")
    try:
        yield tmp
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def write_json(path: str | Path, data, indent: int | None = None) -> None:
    """Write JSON atomically (`atomic_file`): a kill never leaves a torn file."""
    with atomic_file(path) as tmp:
        tmp.write_text(json.dumps(data, indent=indent), encoding="utf-8")


LOCK_FILE = ".lock"


@contextlib.contextmanager
def folder_lock(folder: str | Path) -> Iterator[None]:
    """Hold ``folder/.lock`` (this process's pid) while writing ``folder``: a second writer gets an error that names
    the holder instead of interleaving its files with ours. A lock left by a process that is gone (killed) is taken
    over. Processes on other machines sharing the folder are not seen (the pid is local). A folder the lock created
    is removed again if the writer left nothing in it (a run refused before it wrote anything)."""
    folder = Path(folder)
    created = not folder.exists()
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / LOCK_FILE
    while True:
        try:
            descriptor = os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
        except FileExistsError:
            try:
                holder = int(path.read_text(encoding="utf-8").strip() or 0)
            except (OSError, ValueError):
                holder = 0
            if holder and holder != os.getpid() and _alive(holder):
                raise FileExistsError(f"{folder}: another process (pid {holder}) is writing this folder; wait for it, "
                                      f"or choose another folder (its lock: {path})") from None
            path.unlink(missing_ok=True)  # left by a process that is gone
            continue
        with os.fdopen(descriptor, "w", encoding="utf-8") as lock:
            lock.write(str(os.getpid()))
        break
    try:
        yield
    finally:
        path.unlink(missing_ok=True)
        if created:
            with contextlib.suppress(OSError):  # not empty: the writer's output stays
                folder.rmdir()
