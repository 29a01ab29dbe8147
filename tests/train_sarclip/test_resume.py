"""A run stopped mid-epoch and resumed ends with exactly the weights of an uninterrupted run."""

import json
from pathlib import Path

import pytest
from safetensors.torch import load_file

from train.common.checkpointing import list_checkpoints
from train.sarclip import fit


def test_resume_gives_identical_weights(tiny_train_config, tmp_path):
    # 48 chips / batch 8 = 6 steps per epoch, 2 epochs; the interrupted run stops at step 4 (mid-epoch 0)
    common = dict(num_epochs=2, checkpoint_every=2, keep_checkpoints=1)
    uninterrupted = fit(tiny_train_config(output_dir=str(tmp_path / "full"), **common))
    fit(tiny_train_config(output_dir=str(tmp_path / "split"), max_steps=4, **common))
    checkpoints = list_checkpoints(tmp_path / "split" / "checkpoints")
    assert [c.name for c in checkpoints] == ["step_00000004"]  # older ones pruned, no temporary folder left
    assert not list((tmp_path / "split" / "checkpoints").glob(".tmp-*"))
    state = json.loads((checkpoints[0] / "trainer_state.json").read_text())
    guard = state.pop("guard")  # the collapse guard's state, so the resumed run judges as the uninterrupted one
    assert state == {"global_step": 4, "epoch": 0, "batches_in_epoch": 4}
    assert guard["healthy"] and guard["best_checkpoint"].endswith("step_00000002")
    resumed = fit(tiny_train_config(output_dir=str(tmp_path / "split"), resume="latest", **common))

    assert resumed.state.global_step == uninterrupted.state.global_step == 12
    assert resumed.losses == uninterrupted.losses
    full = load_file(uninterrupted.model_dir / "model.safetensors")
    split = load_file(resumed.model_dir / "model.safetensors")
    assert full.keys() == split.keys()
    assert all((full[k] == split[k]).all() for k in full)
    assert uninterrupted.losses[-1] < uninterrupted.losses[0]


def test_damaged_training_log_is_named_and_log_writes_are_atomic(tiny_train_config):
    from sar_utils.atomic import write_json
    from train.common.checkpointing import read_json

    config = tiny_train_config(max_steps=2)
    fit(config)
    log = Path(config.output_dir) / "training_log.json"
    assert len(read_json(log)["losses"]) == 2 and not list(log.parent.glob(".tmp-*"))
    log.write_text('{"losses": [1.0, 2')  # a torn write of the old, non-atomic code
    with pytest.raises(ValueError, match="training_log.json: damaged JSON"):
        fit(tiny_train_config(max_steps=3, resume="latest"))
    write_json(log, {"losses": [1.0, 2.0]})
    assert read_json(log) == {"losses": [1.0, 2.0]}


def test_disk_full_during_a_checkpoint_keeps_the_last_good_one(tiny_train_config, monkeypatch):
    import errno

    from accelerate import Accelerator

    config = tiny_train_config(max_steps=2, checkpoint_every=1)
    fit(config)
    checkpoints = Path(config.output_dir) / "checkpoints"
    before = sorted(p.name for p in checkpoints.iterdir())

    def full_disk(self, output_dir=None, **kwargs):
        raise RuntimeError("[enforce fail at inline_container.cc:603] . unexpected pos 4608 vs 4500")

    monkeypatch.setattr(Accelerator, "save_state", full_disk)
    with pytest.raises(OSError) as raised:
        fit(tiny_train_config(max_steps=3, checkpoint_every=1, resume="latest"))
    assert raised.value.errno == errno.ENOSPC and "checkpoints/.tmp-step_00000003" in raised.value.filename
    assert sorted(p.name for p in checkpoints.iterdir()) == before  # nothing half-written, nothing lost


KILLED_RUN = """
import os, signal, sys
import torch
torch.set_num_threads(1)  # as the tests' process (tests/conftest.py): the same float summation order
from accelerate import Accelerator
from train.sarclip import TrainConfig, fit

original = Accelerator.save_state
calls = []

def save_then_die(self, output_dir=None, **kwargs):
    calls.append(output_dir)
    result = original(self, output_dir, **kwargs)
    if len(calls) == 2:  # the second checkpoint: killed after writing its files, before the rename
        os.kill(os.getpid(), signal.SIGKILL)
    return result

Accelerator.save_state = save_then_die
fit(TrainConfig.from_yaml(sys.argv[1]))
"""


def test_kill_during_a_checkpoint_write_leaves_the_last_good_one_and_resume_is_exact(tiny_train_config, tmp_path):
    import subprocess
    import sys

    killed = tiny_train_config(output_dir=str(tmp_path / "killed"), checkpoint_every=2, max_steps=6)
    killed.save_yaml(tmp_path / "killed.yaml")
    run = subprocess.run([sys.executable, "-c", KILLED_RUN, str(tmp_path / "killed.yaml")], capture_output=True,
                         text=True, timeout=300)
    assert run.returncode == -9, run.stderr[-2000:]
    root = tmp_path / "killed" / "checkpoints"
    assert [p.name for p in list_checkpoints(root)] == ["step_00000002"]  # the half-written one does not count
    fit(tiny_train_config(output_dir=str(tmp_path / "killed"), checkpoint_every=2, max_steps=6, resume="latest"))
    whole = fit(tiny_train_config(output_dir=str(tmp_path / "whole"), checkpoint_every=2, max_steps=6))
    resumed = load_file(tmp_path / "killed" / "final" / "model.safetensors")
    for name, tensor in load_file(whole.model_dir / "model.safetensors").items():
        assert (resumed[name] == tensor).all(), name


def test_a_used_run_folder_is_refused_unless_resumed_or_overwritten(tiny_train_config, tmp_path, capsys):
    from train.sarclip.__main__ import main

    first = fit(tiny_train_config(max_steps=2))
    weights = (first.model_dir / "model.safetensors").read_bytes()
    args = ["fit", "--data", "synthetic", "--synthetic_num_train", "48", "--synthetic_num_test", "16",
            "--synthetic_image_size", "32", "--model", "ViT-B-32", "--model_overrides",
            json.dumps(tiny_train_config().model_overrides), "--tokenizer", tiny_train_config().tokenizer,
            "--batch_size", "8", "--max_steps", "2", "--learning_rate", "1e-2", "--eval_tasks", "[]",
            "--report_to", "none", "--output_dir", str(first.model_dir.parent)]
    capsys.readouterr()
    assert main(args) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and "holds a run (final/, checkpoints/); pass --resume" in err
    assert (first.model_dir / "model.safetensors").read_bytes() == weights  # nothing touched
    assert main(args + ["--resume", "--overwrite"]) == 2
    assert "contradict" in capsys.readouterr().err
    assert main(args + ["--overwrite"]) == 0
    assert (first.model_dir / "model.safetensors").read_bytes() != weights  # the new run's model (lr 1e-2)
    assert len(json.loads((first.model_dir.parent / "training_log.json").read_text())["losses"]) == 2


def test_resume_with_changed_training_settings_is_refused(tiny_train_config):
    fit(tiny_train_config(num_epochs=2, max_steps=3))
    with pytest.raises(ValueError, match=r"learning_rate: 0.001 -> 0.01, .*seed: 0 -> 1"):
        fit(tiny_train_config(num_epochs=2, resume="latest", learning_rate=1e-2, seed=1))
    with pytest.raises(ValueError, match=r"batch_size: 8 -> 16"):
        fit(tiny_train_config(num_epochs=2, resume="latest", batch_size=16))
    resumed = fit(tiny_train_config(num_epochs=2, resume="latest", max_steps=None, log_every=5))  # may change
    assert resumed.state.global_step == 12


def test_a_folder_another_live_run_writes_is_refused_and_a_stale_lock_taken_over(tiny_train_config, tmp_path):
    import subprocess
    import sys

    holder = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        run = tmp_path / "run"
        run.mkdir()
        (run / ".lock").write_text(str(holder.pid))
        with pytest.raises(FileExistsError, match=rf"another process \(pid {holder.pid}\) is writing this folder"):
            fit(tiny_train_config(max_steps=1))
        assert not (run / "final").exists() and (run / ".lock").read_text() == str(holder.pid)
    finally:
        holder.kill()
        holder.wait()
    result = fit(tiny_train_config(max_steps=1))  # the holder is gone: its lock is stale
    assert result.state.global_step == 1 and not (run / ".lock").exists()


def test_a_checkpoint_whose_state_file_disagrees_with_its_step_is_refused(tiny_train_config):
    first = fit(tiny_train_config(num_epochs=2, max_steps=3, checkpoint_every=1, keep_checkpoints=5))
    latest = list_checkpoints(first.model_dir.parent / "checkpoints")[-1]
    state = json.loads((latest / "trainer_state.json").read_text())
    assert latest.name == "step_00000003" and state["global_step"] == 3
    (latest / "trainer_state.json").write_text(json.dumps({**state, "global_step": 5}))  # tampered
    with pytest.raises(ValueError, match=r"says step 5 but the checkpoint is step_00000003"):
        fit(tiny_train_config(num_epochs=2, resume="latest", checkpoint_every=1, keep_checkpoints=5))
    (latest / "trainer_state.json").write_text("{not json")
    with pytest.raises(ValueError, match="not a trainer state"):
        fit(tiny_train_config(num_epochs=2, resume=str(latest), checkpoint_every=1, keep_checkpoints=5))
