"""push_dataset_to_hub without network: the Hub calls copy into a local folder that stands for the repo."""

import shutil

from huggingface_hub import HfApi

from dataset_scripts import build_dataset, push_dataset_to_hub
from dataset_scripts.__main__ import main


def fake_hub(monkeypatch, hub_dir):
    calls = []

    def create_repo(self, repo_id, **kwargs):
        calls.append(("create_repo", repo_id, kwargs))
        (hub_dir / repo_id).mkdir(parents=True, exist_ok=True)

    def upload_folder(self, *, folder_path, repo_id, repo_type=None, **kwargs):
        calls.append(("upload_folder", repo_id, {"repo_type": repo_type, **kwargs}))
        shutil.copytree(folder_path, hub_dir / repo_id, dirs_exist_ok=True)
        return f"commit of {repo_id}"

    monkeypatch.setattr(HfApi, "create_repo", create_repo)
    monkeypatch.setattr(HfApi, "upload_folder", upload_folder)
    return calls


def test_push_uploads_shards_and_card(tmp_path, monkeypatch, load_built):
    calls = fake_hub(monkeypatch, tmp_path / "hub")
    build_dataset("synthetic", None, tmp_path / "built", num_train=6, num_test=3, image_size=32)
    assert push_dataset_to_hub(tmp_path / "built", "me/sar-synthetic", private=True) == "commit of me/sar-synthetic"
    assert [c[0] for c in calls] == ["create_repo", "upload_folder"]
    assert calls[0][2] == {"repo_type": "dataset", "private": True, "exist_ok": True}
    assert calls[1][2]["repo_type"] == "dataset"
    repo = tmp_path / "hub" / "me" / "sar-synthetic"
    uploaded = sorted(p.relative_to(repo).as_posix() for p in repo.rglob("*") if p.is_file())
    assert uploaded == ["README.md", "data/test-00000-of-00001.parquet", "data/train-00000-of-00001.parquet"]
    ds = load_built(repo)  # what the Hub repo would serve
    assert (ds["train"].num_rows, ds["test"].num_rows) == (6, 3)


def test_cli_push_to_hub_after_build(tmp_path, monkeypatch):
    calls = fake_hub(monkeypatch, tmp_path / "hub")
    assert main(["build", "synthetic", "--out", str(tmp_path / "b"), "--num-train", "2", "--num-test", "1",
                 "--image-size", "32", "--push-to-hub", "me/syn"]) == 0
    assert [c[:2] for c in calls] == [("create_repo", "me/syn"), ("upload_folder", "me/syn")]
    assert (tmp_path / "hub" / "me" / "syn" / "README.md").read_text() == (tmp_path / "b" / "README.md").read_text()
    calls.clear()
    assert main(["push", str(tmp_path / "b"), "me/other", "--private"]) == 0
    assert calls[0] == ("create_repo", "me/other", {"repo_type": "dataset", "private": True, "exist_ok": True})
