"""`python -m train quickstart` / `eval` end to end (shrunk), with tensorboard logs and an AutoModel-loadable folder."""

import dataclasses
import json
import subprocess
import sys

import pytest
from transformers import AutoModel

from train.sarclip.__main__ import main
from train.sarclip.config import TrainConfig


def test_quickstart_then_eval(tmp_path, capsys):
    out = tmp_path / "quick"
    assert main(["quickstart", "--synthetic_num_train", "60", "--synthetic_num_test", "20", "--num_epochs", "1",
                 "--batch_size", "20", "--output_dir", str(out), "--log_every", "1"]) == 0
    printed = capsys.readouterr().out
    assert f"model: {out / 'final'}" in printed and "results:" in printed and "zero_shot/top1" in printed
    assert printed.startswith("processes: 1 (NO), per-process batch 20, global batch 20, precision no, device cpu\n")
    metrics = json.loads((out / "final" / "eval_results.json").read_text())
    for name in ("retrieval/mean_recall", "zero_shot/top1", "linear_probe/accuracy"):
        assert 0 <= metrics[name] <= 100, name
    events = list((out / "logs").rglob("events.out.tfevents.*"))
    assert events, "no tensorboard event file"
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    tags = set()
    for event_file in events:
        tags |= set(EventAccumulator(str(event_file)).Reload().Tags()["scalars"])
    assert {"train/loss", "eval/zero_shot/top1", "eval/retrieval/mean_recall"} <= tags, tags  # eval beside training
    assert "model-index" in (out / "final" / "README.md").read_text()
    model = AutoModel.from_pretrained(out / "final", trust_remote_code=True)
    assert model.config.vision_config.image_size == 64

    assert main(["eval", str(out / "final"), "--data", "synthetic", "--tasks", "retrieval",
                 "--out", str(tmp_path / "eval")]) == 0
    again = json.loads((tmp_path / "eval" / "eval_results.json").read_text())
    spread = {"image_feature_cosine", "text_feature_cosine", "collapsed"}
    assert set(again) == {k for k in metrics if k.startswith("retrieval/")} | spread and spread <= set(metrics)
    # without --out the results go beside the model folder, never into it (a later push uploads final/ as it is)
    before = sorted(p.name for p in (out / "final").iterdir())
    assert main(["eval", str(out / "final"), "--data", "synthetic", "--tasks", "retrieval"]) == 0
    assert (out / "eval_synthetic" / "eval_results.json").is_file()
    assert sorted(p.name for p in (out / "final").iterdir()) == before


@pytest.mark.parametrize("module", ["train", "train.knowlip"])
def test_user_errors_exit_2_without_traceback_and_debug_shows_it(module, tmp_path):
    run = subprocess.run([sys.executable, "-m", module, "fit", "--config", str(tmp_path / "missing.yaml")],
                         capture_output=True, text=True, timeout=120)
    assert run.returncode == 2
    assert run.stderr.startswith("error: ") and "missing.yaml: no such config file" in run.stderr
    assert "Traceback" not in run.stderr
    debug = subprocess.run([sys.executable, "-m", module, "--debug", "fit", "--config", str(tmp_path / "missing.yaml")],
                           capture_output=True, text=True, timeout=120)
    assert debug.returncode == 1 and "Traceback" in debug.stderr


def test_fit_help_lists_every_config_field_with_its_default(capsys):
    with pytest.raises(SystemExit):
        main(["fit", "--help"])
    text = capsys.readouterr().out
    for field in dataclasses.fields(TrainConfig):
        assert f"--{field.name} (default: " in text, field.name
    assert "--learning_rate (default: None)" in text
