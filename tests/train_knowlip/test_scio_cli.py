"""`python -m train.knowlip fit --config tiny_synthetic.yaml` end to end, and the config's YAML/CLI parsing."""

import json
from pathlib import Path

import pytest
import torch
from transformers import AutoModel, BertTokenizer

from train.knowlip import ScioRunConfig, load_text_version
from train.knowlip.__main__ import main

TINY = Path(__file__).resolve().parents[2] / "train" / "knowlip" / "configs" / "tiny_synthetic.yaml"
BASE = TINY.with_name("base_synthetic.yaml")


def test_cli_fit_runs_all_stages_on_the_tiny_config(tmp_path, capsys):
    out = tmp_path / "run"
    assert main(["fit", "--config", str(TINY), "--output_dir", str(out), "--synthetic_num_images", "8"]) == 0
    captured = capsys.readouterr()
    printed = captured.out
    assert f"model: {out / 'model'}" in printed and "texts: 8 images" in printed
    assert "SCIO stage 3 (unit 5/5)" in captured.err  # a progress bar per training epoch
    log = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    assert [(r["kind"], r["stage"]) for r in log] == [("train", 1), ("screen", 2), ("train", 2), ("reconstruct", 3),
                                                      ("train", 3)]
    assert [r["steps"] for r in log if r["kind"] == "train"] == [2, 2, 2]  # 8 images, batch 4
    v2 = load_text_version(out, 2)
    assert len(v2) == 8 and all(len(text) == 8 for text in v2["subtexts"])
    saved = ScioRunConfig.from_yaml(out / "scio_config.yaml")
    assert saved.synthetic_num_images == 8 and saved.stage_epochs == (1, 1, 1) and saved.model_overrides == {
        "queue_size": 32}
    model = AutoModel.from_pretrained(out / "model")
    assert model.config.queue_size == 32 and model.queue.ptr.item() == (3 * 8) % 32
    assert model.config.text_config.vocab_size == len(BertTokenizer.from_pretrained(out / "tokenizer"))


def test_accumulated_batches_make_one_optimizer_step(tmp_path, capsys):
    out = tmp_path / "run"
    assert main(["fit", "--config", str(TINY), "--output_dir", str(out), "--synthetic_num_images", "8",
                 "--gradient_accumulation_steps", "2", "--warmup_steps", "1", "--report_to", "none"]) == 0
    assert "per-process batch 4 x 2 accumulated micro-batches, global batch 8" in capsys.readouterr().out
    log = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    assert [r["steps"] for r in log if r["kind"] == "train"] == [1, 1, 1]  # 8 images, batch 4, 2 batches a step
    assert [len(r["lr_trace"]) for r in log if r["kind"] == "train"] == [2, 2, 2]  # a rate per batch
    assert log[-1]["step"] == 3


def test_yaml_and_flags_are_typed_and_checked(tmp_path):
    config = ScioRunConfig.from_cli(str(TINY), ["--learning_rate", "1e-4", "--lora", "--stage_epochs", "[2, 0, 1]",
                                                "--model_overrides", "{queue_size: 8}", "--output_dir", "007"])
    assert config.learning_rate == 1e-4 and config.lora is True and config.stage_epochs == (2, 0, 1)
    assert config.model_overrides == {"queue_size": 8} and config.output_dir == "007" and config.batch_size == 4
    assert config.units()[:3] == [("train", 1), ("train", 1), ("screen", 2)]
    base = ScioRunConfig.from_yaml(BASE)
    assert (base.model, base.mixed_precision, base.synthetic_image_size) == ("base", "bf16", 224)
    with pytest.raises(ValueError, match="unknown option --no_such_field"):
        ScioRunConfig.from_cli(None, ["--no_such_field", "1"])
    with pytest.raises(ValueError, match="option --batch_size needs a value"):
        ScioRunConfig.from_cli(None, ["--batch_size"])
    with pytest.raises(ValueError, match=r"stage_epochs: give 3 epoch counts \(stages 1, 2, 3\), got \[1, 2\]"):
        ScioRunConfig(stage_epochs=[1, 2])
    bad = tmp_path / "bad.yaml"
    bad.write_text("modle: tiny\n")
    with pytest.raises(ValueError, match=r"bad.yaml: unknown config keys \['modle'\]"):
        ScioRunConfig.from_yaml(bad)
    with pytest.raises(ValueError, match="warmup_steps=3000 is longer than the run \\(36 optimizer steps\\)"):
        from train.knowlip import fit_scio
        fit_scio(ScioRunConfig(model="nowhere", synthetic_num_images=2, synthetic_image_size=32,
                               output_dir=str(tmp_path / "x")))  # checked before any model is built
    with pytest.raises(ValueError, match="model must be a preset .* or .towers.; nowhere is none of these"):
        from train.knowlip import fit_scio
        fit_scio(ScioRunConfig(model="nowhere", synthetic_num_images=2, synthetic_image_size=32, warmup_steps=1,
                               output_dir=str(tmp_path / "x")))


def test_a_scio_run_pushes_and_loads_by_repo_id_offline(tmp_path, offline_hub, capsys):
    """`fit --push_to_hub` and `push RUN_DIR REPO` upload the model/ folder like SARCLIP's; the Hub snapshot then
    loads by repo id with HF_HUB_OFFLINE=1 (the remote code and the card travel with it)."""
    out = tmp_path / "run"
    assert main(["fit", "--config", str(TINY), "--output-dir", str(out), "--synthetic_num_images", "8",
                 "--push-to-hub", "org/tiny-knowlip"]) == 0
    pushed = offline_hub.snapshot("org/tiny-knowlip")
    for name in ("config.json", "model.safetensors", "modeling_knowlip.py", "processor_config.json", "README.md"):
        assert (pushed / name).is_file(), name
    assert "SCIO on 8 images" in (pushed / "README.md").read_text()
    model = AutoModel.from_pretrained("org/tiny-knowlip", trust_remote_code=True)
    local = AutoModel.from_pretrained(out / "model")
    assert all(torch.equal(a, b) for a, b in zip(model.state_dict().values(), local.state_dict().values()))

    assert main(["push", str(out), "org/tiny-knowlip-2", "--private"]) == 0
    assert f"pushed {out / 'model'} to org/tiny-knowlip-2" in capsys.readouterr().out
    assert offline_hub.commits[-1] == ("org/tiny-knowlip-2", offline_hub.commits[0][1])
