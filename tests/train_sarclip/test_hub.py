"""Hub upload without network (HfApi stubbed to copy into a local folder) and a real offline load by repo id."""

import json
import os
import shutil
import subprocess
import sys

import pytest
import torch
import yaml
from huggingface_hub import HfApi

from train.sarclip import fit
from train.sarclip.__main__ import main

SNAPSHOT = "0123456789abcdef0123456789abcdef01234567"
METRICS = {"retrieval/mean_recall": 42.5, "zero_shot/top1": 61.25, "linear_probe/accuracy": 77.0}
# as float32 metrics reach eval_results.json: the card shows them rounded to 4 decimals
NOISY = {"retrieval/mean_recall": 42.50000023841858}


@pytest.fixture
def fake_hub(monkeypatch, tmp_path):
    """`HfApi.create_repo` / `upload_folder` copy into tmp_path/remote/<repo id>; returns that root."""
    remote = tmp_path / "remote"

    def create_repo(self, repo_id, private=False, exist_ok=False, **kwargs):
        (remote / repo_id).mkdir(parents=True, exist_ok=exist_ok)

    def upload_folder(self, folder_path, repo_id, commit_message=None, **kwargs):
        shutil.copytree(folder_path, remote / repo_id, dirs_exist_ok=True)

    monkeypatch.setattr(HfApi, "create_repo", create_repo)
    monkeypatch.setattr(HfApi, "upload_folder", upload_folder)
    return remote


def _model_index(card: str) -> dict:
    return yaml.safe_load(card.split("---")[1])


def test_push_to_hub_and_offline_round_trip(tiny_train_config, fake_hub, tmp_path):
    result = fit(tiny_train_config(max_steps=2, push_to_hub="org/tiny-sarclip"))
    pushed = fake_hub / "org" / "tiny-sarclip"
    for name in ("config.json", "model.safetensors", "modeling_sarclip.py", "configuration_sarclip.py",
                 "processor_config.json", "tokenizer.json", "train_config.yaml", "README.md"):
        assert (pushed / name).is_file(), name
    assert yaml.safe_load((pushed / "train_config.yaml").read_text())["max_steps"] == 2

    # `python -m train push RUN_DIR REPO` after an evaluation: the card carries the results as model-index
    (result.model_dir / "eval_results.json").write_text(json.dumps(METRICS))
    assert main(["push", str(result.model_dir.parent), "org/tiny-sarclip-eval"]) == 0
    metadata = _model_index((fake_hub / "org" / "tiny-sarclip-eval" / "README.md").read_text())
    assert metadata["pipeline_tag"] == "zero-shot-image-classification"
    metrics = [m for entry in metadata["model-index"][0]["results"] for m in entry["metrics"]]
    assert {m["name"]: m["value"] for m in metrics} == METRICS
    assert {m["name"]: m["type"] for m in metrics} == {  # the Hub's standard metric types
        "retrieval/mean_recall": "recall", "zero_shot/top1": "accuracy", "linear_probe/accuracy": "accuracy"}
    assert metadata["datasets"] == ["synthetic"] and "/" not in json.dumps(metadata["datasets"])
    assert metadata["license"] == "apache-2.0"  # the package's license
    card = (fake_hub / "org" / "tiny-sarclip-eval" / "README.md").read_text()
    assert "model=ViT-B-32 with model_overrides (the architecture above)" in card  # not the preset's name alone
    assert "lora" not in card.split("**Training:**")[1].split("\n")[0]  # a full fine-tune lists no LoRA rank
    (result.model_dir / "eval_results.json").write_text(json.dumps(NOISY))
    assert main(["push", str(result.model_dir.parent), "org/tiny-sarclip-noisy"]) == 0
    noisy = _model_index((fake_hub / "org" / "tiny-sarclip-noisy" / "README.md").read_text())
    assert noisy["model-index"][0]["results"][0]["metrics"][0]["value"] == 42.5

    # a local HF cache snapshot of the pushed repo loads by repo id, offline, with trust_remote_code
    hf_home = tmp_path / "hf_home"
    repo_cache = hf_home / "hub" / "models--org--tiny-sarclip-eval"
    shutil.copytree(fake_hub / "org" / "tiny-sarclip-eval", repo_cache / "snapshots" / SNAPSHOT)
    (repo_cache / "refs").mkdir()
    (repo_cache / "refs" / "main").write_text(SNAPSHOT)
    pixels = torch.linspace(-1, 1, 2 * 3 * 32 * 32).reshape(2, 3, 32, 32)
    torch.save(pixels, tmp_path / "pixels.pt")
    script = (
        "import sys, torch\n"
        "from transformers import AutoModel, AutoProcessor\n"
        "model = AutoModel.from_pretrained('org/tiny-sarclip-eval', trust_remote_code=True).eval()\n"
        "processor = AutoProcessor.from_pretrained('org/tiny-sarclip-eval', trust_remote_code=True)\n"
        "ids = processor(text=['a ship'])['input_ids']\n"
        "with torch.no_grad():\n"
        "    image = model.get_image_features(pixel_values=torch.load(sys.argv[1])).pooler_output\n"
        "torch.save({'image': image, 'ids': ids, 'class': type(model).__module__}, sys.argv[2])\n"
    )
    env = {**os.environ, "HF_HOME": str(hf_home), "HF_HUB_OFFLINE": "1"}
    env.pop("HF_HUB_CACHE", None)
    run = subprocess.run([sys.executable, "-c", script, str(tmp_path / "pixels.pt"), str(tmp_path / "out.pt")],
                         env=env, cwd=tmp_path, capture_output=True, text=True, timeout=180)
    assert run.returncode == 0, run.stderr[-3000:]
    loaded = torch.load(tmp_path / "out.pt")
    assert loaded["class"].startswith("transformers_modules")  # the pushed code, not the installed package

    from train.sarclip.model_io import load_trained_model

    model, processor = load_trained_model(result.model_dir)
    with torch.no_grad():
        torch.testing.assert_close(loaded["image"], model.eval().get_image_features(pixel_values=pixels).pooler_output)
    assert torch.equal(loaded["ids"], processor(text=["a ship"])["input_ids"])


def test_lora_adapters_push_with_the_base_models_hub_id_and_no_local_path(tiny_train_config, fake_hub, tmp_path,
                                                                          capsys):
    base = fit(tiny_train_config(max_steps=1, eval_tasks=[], output_dir=str(tmp_path / "base"))).model_dir
    with pytest.raises(ValueError, match="push_to_hub with lora: set hub_base_model"):
        tiny_train_config(init_from=str(base), lora=True, push_to_hub="org/adapters")  # before any training
    run = fit(tiny_train_config(init_from=str(base), lora=True, merge_lora=True, max_steps=1, eval_tasks=[],
                                output_dir=str(tmp_path / "lora")))
    adapter_card = (run.model_dir / "adapter" / "README.md").read_text()
    assert "LoRA adapters on" in adapter_card and str(tmp_path) not in adapter_card  # ours, not peft's blank one

    assert main(["push", str(run.model_dir.parent), "org/adapters"]) == 2  # a local base needs its Hub id
    assert "pass --base_model REPO_ID" in capsys.readouterr().err
    assert main(["push", str(run.model_dir.parent), "org/adapters", "--base_model", "org/sarclip-base"]) == 0
    pushed = fake_hub / "org" / "adapters"
    assert json.loads((pushed / "adapter" / "adapter_config.json").read_text())[
        "base_model_name_or_path"] == "org/sarclip-base"
    assert _model_index((pushed / "README.md").read_text()).get("base_model") in (None, "org/sarclip-base")
    for path in pushed.rglob("*"):  # no absolute local path leaves the machine
        if path.is_file() and path.suffix in (".json", ".md", ".yaml"):
            assert str(tmp_path) not in path.read_text(), path
    # the local folder still loads onto its local base
    assert json.loads((run.model_dir / "adapter" / "adapter_config.json").read_text())[
        "base_model_name_or_path"] == str(base)
