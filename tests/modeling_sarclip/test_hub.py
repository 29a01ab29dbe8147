"""`push_to_hub`, then `from_pretrained("org/name")` from the local HF cache snapshot with HF_HUB_OFFLINE=1."""

import json
import os
import subprocess
import sys

import torch

from modeling_sarclip import SarclipImageProcessor, SarclipModel, SarclipProcessor

REPO_ID = "sar-org/sarclip-tiny"

LOAD_BY_REPO_ID = """
import json, sys
sys.modules["modeling_sarclip"] = None  # a user who never installed this package
import torch
from transformers import AutoModel, AutoProcessor
model = AutoModel.from_pretrained(sys.argv[1], trust_remote_code=True).eval()
processor = AutoProcessor.from_pretrained(sys.argv[1], trust_remote_code=True)
inputs = processor(text=["a SAR image of a ship"], images=torch.zeros(40, 40).numpy(), return_tensors="pt")
with torch.no_grad():
    print(json.dumps(model.get_text_features(inputs["input_ids"]).pooler_output.tolist()))
"""


def test_push_to_hub_then_load_by_repo_id_offline(tmp_path, tiny_config, clip_tokenizer, offline_hub):
    torch.manual_seed(0)
    model = SarclipModel(tiny_config()).eval()
    processor = SarclipProcessor(SarclipImageProcessor(size=32), clip_tokenizer)
    model.push_to_hub(REPO_ID)
    processor.push_to_hub(REPO_ID)

    assert [repo for repo, _ in offline_hub.commits] == [REPO_ID, REPO_ID]
    pushed = {p.name for p in offline_hub.snapshot(REPO_ID).iterdir()}
    assert {"config.json", "model.safetensors", "modeling_sarclip.py", "tokenizer.json", "processor_config.json",
            "image_processing_sarclip.py", "README.md"} <= pushed

    env = {**os.environ, "HF_HUB_OFFLINE": "1", "HF_HUB_CACHE": str(offline_hub.cache_dir),
           "HF_MODULES_CACHE": str(tmp_path / "modules")}
    result = subprocess.run([sys.executable, "-c", LOAD_BY_REPO_ID, REPO_ID], env=env, cwd=tmp_path,
                            capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    with torch.no_grad():
        expected = model.get_text_features(processor(text=["a SAR image of a ship"], return_tensors="pt")["input_ids"])
    torch.testing.assert_close(torch.tensor(json.loads(result.stdout.splitlines()[-1])), expected.pooler_output)

