"""Faults while writing a dataset folder: a build killed (SIGKILL) at each step of its output move, a full disk
(ENOSPC) in the middle of a build, and the reaping of killed builds' temporary folders."""

import errno
import os
import signal
import subprocess
import sys
import textwrap
import time

import datasets
import pytest
from huggingface_hub import DatasetCard

from dataset_scripts import build_dataset
from dataset_scripts.__main__ import main
from sar_utils.atomic import reap_leftovers
from dataset_scripts.export import write_dataset_folder

SMALL = {"num_train": 4, "num_test": 2, "image_size": 32}

# a build of `out` (synthetic, seed 1) that pauses forever at `stage`, for the parent to kill it there
PAUSING_BUILD = """
import os, shutil, sys, time
from pathlib import Path
from dataset_scripts import build_dataset

out, stage = Path(sys.argv[1]), sys.argv[2]
replace, rmtree = os.replace, shutil.rmtree

def pause():
    (out.parent / "paused").write_text("")
    time.sleep(600)

def pausing_replace(source, target):
    if stage == "before the first rename" and Path(source) == out:
        pause()
    replace(source, target)
    if stage == "between the renames" and Path(source) == out:
        pause()

def pausing_rmtree(path, *args, **kwargs):
    if stage == "removing the old output" and Path(path).name.startswith(".old-"):
        pause()
    rmtree(path, *args, **kwargs)

def pausing_write(self, *args, **kwargs):
    pause()

os.replace, shutil.rmtree = pausing_replace, pausing_rmtree
if stage == "writing shards":
    from datasets.arrow_writer import ArrowWriter
    ArrowWriter.write = pausing_write
build_dataset("synthetic", None, out, overwrite=True, seed=1, num_train=4, num_test=2, image_size=32)
"""


def _snapshot(folder):
    return {p.relative_to(folder).as_posix(): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def _leftovers(folder):
    return sorted(p.name for p in folder.iterdir() if p.name.startswith((".tmp-", ".old-")))


@pytest.mark.parametrize("stage", ["writing shards", "before the first rename", "between the renames",
                                   "removing the old output"])
def test_a_build_killed_while_writing_loses_nothing_and_the_next_run_reaps(tmp_path, repo_root, stage):
    out = tmp_path / "out"
    build_dataset("synthetic", None, out, **SMALL)
    old = _snapshot(out)
    process = subprocess.Popen([sys.executable, "-c", textwrap.dedent(PAUSING_BUILD), str(out), stage], cwd=repo_root,
                               stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 240
    while not (tmp_path / "paused").exists():
        assert process.poll() is None, process.stderr.read().decode()[-3000:]
        assert time.monotonic() < deadline, "the build never reached the stage"
        time.sleep(0.05)
    os.kill(process.pid, signal.SIGKILL)
    process.wait()
    (tmp_path / "paused").unlink()
    left = _leftovers(tmp_path)
    pid = str(process.pid)
    assert left and all(f"-{pid}" in name for name in left)
    if stage == "between the renames":  # the previous output waits aside, whole, under the killed process's id
        assert not out.exists() and _snapshot(tmp_path / f".old-out-{pid}") == old
    elif stage == "removing the old output":  # the new output is in place and complete
        assert datasets.load_dataset(str(out), cache_dir=str(tmp_path / "cache"))["train"].num_rows == 4
    else:
        assert _snapshot(out) == old

    with pytest.raises(FileExistsError):  # the next run puts a previous output back and reaps the rest first
        build_dataset("synthetic", None, out, **SMALL)
    assert _leftovers(tmp_path) == []
    if stage != "removing the old output":
        assert _snapshot(out) == old
    build_dataset("synthetic", None, out, overwrite=True, seed=1, **SMALL)
    assert _leftovers(tmp_path) == [] and (out / "README.md").is_file()


def test_reaping_leaves_running_builds_and_other_outputs_alone(tmp_path):
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    names = [f".tmp-out-{dead.pid}-abc_1", f".old-out-{dead.pid}",  # a killed writer of out: reaped
             f".tmp-out-{os.getpid()}-xyz", f".old-out-{os.getppid()}",  # running processes: kept
             f".tmp-out-2-{dead.pid}-abc", f".old-out-2-{dead.pid}", f".tmp-other-{dead.pid}-abc",  # other outputs
             "out-1"]
    for name in names:
        (tmp_path / name).mkdir()
        (tmp_path / name / "file").write_text(name)
    (tmp_path / "out").mkdir()
    reap_leftovers(tmp_path / "out")
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(["out"] + names[2:])


def test_a_missing_output_comes_back_from_a_killed_writers_old_folder(tmp_path):
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    aside = tmp_path / f".old-out-{dead.pid}"
    aside.mkdir()
    (aside / "README.md").write_text("previous output")
    reap_leftovers(tmp_path / "out")
    assert (tmp_path / "out" / "README.md").read_text() == "previous output" and not aside.exists()


def _disk_full(path="/data/x.parquet", with_errno=True):
    def fail(*args, **kwargs):
        if with_errno:
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), path)
        raise OSError("[Errno 28] No space left on device")  # how pyarrow reports it: no errno attribute
    return fail


@pytest.mark.parametrize("where", ["parquet writer", "parquet writer, no errno", "dataset card", "final rename"])
def test_disk_full_during_a_build_is_one_clear_error_and_the_old_output_stays(tmp_path, monkeypatch, capsys, where):
    out = tmp_path / "out"
    build_dataset("synthetic", None, out, **SMALL)
    old = _snapshot(out)
    if where.startswith("parquet writer"):
        from datasets.arrow_writer import ArrowWriter
        monkeypatch.setattr(ArrowWriter, "write", _disk_full(with_errno=where == "parquet writer"))
    elif where == "dataset card":
        monkeypatch.setattr(DatasetCard, "save", _disk_full())
    else:
        monkeypatch.setattr("dataset_scripts.export.replace_folder", _disk_full())
    code = main(["build", "synthetic", "--out", str(out), "--overwrite", "--seed", "1", "--num-train", "4",
                 "--num-test", "2", "--image-size", "32"])
    assert code == 2
    stderr = capsys.readouterr().err  # datasets' progress bars, then the one error line
    assert stderr.endswith(f"\nerror: no space left on device while writing {out}; free some space and run again "
                           "(the last complete checkpoint or output is intact)\n") and "Traceback" not in stderr
    assert _snapshot(out) == old and _leftovers(tmp_path) == []


def test_disk_full_in_the_shared_folder_writer(tmp_path, monkeypatch):
    out = tmp_path / "out"
    shard = datasets.Dataset.from_dict({"caption": ["a", "b"]})
    write_dataset_folder(out, {"train": [shard]}, "# card v1\n")
    monkeypatch.setattr("dataset_scripts.export.write_parquet_splits", _disk_full())
    with pytest.raises(OSError) as failure:
        write_dataset_folder(out, {"train": [shard]}, "# card v2\n")
    assert failure.value.errno == errno.ENOSPC and failure.value.filename == str(out)
    assert (out / "README.md").read_text() == "# card v1\n" and _leftovers(tmp_path) == []
