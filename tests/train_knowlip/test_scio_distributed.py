"""SCIO with 2 gloo CPU processes (accelerate launch, the caller's default `Accelerator()`) writes what 1 process
writes, with the same learning rate at every optimizer step; the queues hold both processes' momentum features.

Why no autograd all-gather: SAR-KnowLIP's ITC negatives are momentum features (this batch's and the queue's, ALBEF),
which carry no gradient, so gathering them needs no autograd; the model all-gathers them into every process's queue.
"""

import json
import os
import socket
import subprocess
import sys
from pathlib import Path

from modeling_knowlip import SarKnowlipModel
from train.knowlip.__main__ import main

REPO_ROOT = Path(__file__).resolve().parents[2]
TINY = REPO_ROOT / "train" / "knowlip" / "configs" / "tiny_synthetic.yaml"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _artefacts(run: Path) -> set[str]:
    """Relative paths of all files, per-process RNG states counted once."""
    return {str(p.relative_to(run)).replace("random_states_1", "random_states_0") for p in run.rglob("*") if p.is_file()}


def _flags(out: Path, batch_size: int) -> list[str]:
    # 16 images; global batch 8 in both runs -> 2 optimizer steps per epoch; stage 1, both passes, stage 3;
    # warm-up over 2 steps then decay, so the trace covers both phases; no tracker (the worker's own Accelerator has
    # none), so both runs write the same files
    return ["--output_dir", str(out), "--synthetic_num_images", "16", "--batch_size", str(batch_size),
            "--stage_epochs", "[2, 0, 1]", "--warmup_steps", "2", "--lr_decay_rate", "0.5", "--report_to", "none"]


def test_two_processes_write_the_same_artefacts_as_one(tmp_path, capsys):
    env = {**os.environ, "ACCELERATE_USE_CPU": "true", "OMP_NUM_THREADS": "1",
           "PYTHONPATH": os.pathsep.join(filter(None, [str(REPO_ROOT), os.environ.get("PYTHONPATH")]))}
    command = [sys.executable, "-m", "accelerate.commands.launch", "--multi_gpu", "--num_processes", "2",
               "--num_machines", "1", "--main_process_port", str(_free_port()),
               str(Path(__file__).with_name("scio_worker.py")), str(TINY), *_flags(tmp_path / "two", 4)]
    run = subprocess.run(command, env=env, capture_output=True, text=True, timeout=300, cwd=tmp_path)
    assert run.returncode == 0, run.stderr[-3000:]
    # the first line says what was launched (printed by the main process only)
    assert run.stdout.count("processes: 2 (MULTI_CPU), per-process batch 4, global batch 8, precision no, "
                            "device cpu") == 1
    assert main(["fit", "--config", str(TINY), *_flags(tmp_path / "one", 8)]) == 0
    assert "processes: 1 (NO), per-process batch 8, global batch 8" in capsys.readouterr().out

    one, two = tmp_path / "one", tmp_path / "two"
    assert (two / "checkpoints" / "step_00000006" / "random_states_1.pkl").is_file()  # both processes saved state
    assert _artefacts(one) == _artefacts(two)
    logs = [[json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]
            for run_dir in (one, two)]
    for record_one, record_two in zip(*logs, strict=True):
        assert (record_one["kind"], record_one.get("steps"), record_one["step"]) == (
            record_two["kind"], record_two.get("steps"), record_two["step"])
    # the schedule counts optimizer steps, not steps x processes: the same rate at every step
    traces = [[lr for record in log if record["kind"] == "train" for lr in record["lr_trace"]] for log in logs]
    assert len(traces[1]) == 6 and traces[1] == traces[0]
    assert traces[0][2] == max(traces[0]) and traces[0][3] < traces[0][2]  # warmed up, then decays
    assert logs[1][2]["noisy"] >= 0 and logs[1][3]["attempted"] == logs[1][2]["noisy"]  # passes gathered over ranks

    # each process saw 4 images per step; the queue holds all 16 ids once: both processes' momentum features
    queue = SarKnowlipModel.from_pretrained(two / "model").queue
    assert queue.ptr.item() == (3 * 16) % 32
    assert sorted(queue.image_ids.tolist()) == sorted(list(range(16)) * 2)
