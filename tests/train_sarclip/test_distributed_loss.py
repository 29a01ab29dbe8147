"""Multi-process contrastive loss: 2 CPU processes (gloo, accelerate launch) = 1 process on the full batch."""

import os
import socket
import subprocess
import sys
from pathlib import Path

import torch

from modeling_sarclip import SarclipModel

WORKER = Path(__file__).with_name("distributed_worker.py")
REPO_ROOT = Path(__file__).resolve().parents[2]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _full_batch_reference(model_dir, batch):
    """Single process, whole batch, the model's own forward(return_loss=True): the ground truth."""
    model = SarclipModel.from_pretrained(model_dir).train()
    loss = model(**batch, return_loss=True).loss
    loss.backward()
    return loss.detach(), {n: p.grad for n, p in model.named_parameters()}


def test_two_processes_match_one_process_full_batch(tmp_path, tiny_model_config, make_batch):
    """Also with GradCache (2 micro-batches per process): the negatives span both processes and both micro-batches;
    and with the multi-positive loss, whose positive groups span processes too."""
    torch.manual_seed(0)
    SarclipModel(tiny_model_config("vit")).save_pretrained(tmp_path / "model")
    batch = make_batch(8)
    batch["group_ids"] = torch.tensor([0, 1, 0, 2, 3, 1, 4, 0])
    torch.save(batch, tmp_path / "batch.pt")
    env = {**os.environ, "ACCELERATE_USE_CPU": "true", "OMP_NUM_THREADS": "1",
           "PYTHONPATH": os.pathsep.join(filter(None, [str(REPO_ROOT), os.environ.get("PYTHONPATH")]))}
    command = [sys.executable, "-m", "accelerate.commands.launch", "--multi_gpu", "--num_processes", "2",
               "--num_machines", "1", "--main_process_port", str(_free_port()), str(WORKER),
               str(tmp_path / "model"), str(tmp_path / "batch.pt"), str(tmp_path / "out.pt")]
    run = subprocess.run(command, env=env, capture_output=True, text=True, timeout=240)
    assert run.returncode == 0, run.stderr[-3000:]
    result = torch.load(tmp_path / "out.pt")
    assert result["world_size"] == 2
    plain = {k: v for k, v in batch.items() if k != "group_ids"}
    references = {False: _full_batch_reference(tmp_path / "model", plain),
                  True: _full_batch_reference(tmp_path / "model", batch)}
    assert not torch.allclose(references[False][0], references[True][0])
    for (num_micro_batches, grouped), distributed in ((key, result[key]) for key in result if key != "world_size"):
        loss, grads = references[grouped]
        torch.testing.assert_close(distributed["loss"], loss, atol=1e-5, rtol=1e-5)
        assert grads.keys() == distributed["grads"].keys()
        for name, grad in grads.items():
            torch.testing.assert_close(distributed["grads"][name], grad, atol=1e-5, rtol=1e-4, msg=name)
