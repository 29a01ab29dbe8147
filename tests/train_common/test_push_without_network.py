"""A Hub push with no network (and HF_HUB_OFFLINE unset) is one `error: cannot push ...` line, exit 2, for every
family: the client's connection errors (httpx2) are not OSErrors and used to escape as an 80-line traceback."""

import json
import os
import subprocess
import sys


def test_push_to_an_unreachable_hub_is_one_error_line(tmp_path):
    model = tmp_path / "run" / "model"
    model.mkdir(parents=True)
    (model / "config.json").write_text(json.dumps({"model_type": "sar_knowlip"}))
    env = {key: value for key, value in os.environ.items() if key != "HF_HUB_OFFLINE"}
    env.update(HF_ENDPOINT="http://127.0.0.1:9", HF_TOKEN="hf_not_a_token")  # port 9: nothing listens, no network
    run = subprocess.run([sys.executable, "-m", "train.knowlip", "push", str(tmp_path / "run"), "org/model"],
                         env=env, capture_output=True, text=True, timeout=300)
    assert run.returncode == 2, run.stderr
    assert run.stderr.startswith(f"error: cannot push {model} to the Hub repo org/model (ConnectError")
    assert "Traceback" not in run.stderr and len(run.stderr.strip().splitlines()) == 1
