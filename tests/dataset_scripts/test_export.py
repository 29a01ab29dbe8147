"""The one dataset-folder writer: atomic replacement, kept side entries, and the geovl CLI's push through it."""

import datasets
import pytest
from PIL import Image

from dataset_scripts.export import write_dataset_folder
from dataset_scripts.geovl.__main__ import main as geovl_main


def _shard(tmp_path, names):
    for name in names:
        if not (tmp_path / name).exists():
            Image.new("L", (4, 4), 7).save(tmp_path / name)
    ds = datasets.Dataset.from_dict({"image": [str(tmp_path / n) for n in names], "caption": names})
    return ds.cast_column("image", datasets.Image())


def test_write_replaces_only_when_complete_and_keeps_other_entries(tmp_path):
    out = tmp_path / "out"
    write_dataset_folder(out, {"train": [_shard(tmp_path, ["a.png", "b.png"])]}, "# card v1\n")
    (out / "llm_cache").mkdir()
    (out / "llm_cache" / "entry.json").write_text("{}")
    first = datasets.load_dataset(str(out), split="train")
    assert first["caption"] == ["a.png", "b.png"] and first[0]["image"].size == (4, 4)

    broken = datasets.Dataset.from_dict({"image": [str(tmp_path / "missing.png")], "caption": ["x"]})
    with pytest.raises(FileNotFoundError):
        write_dataset_folder(out, {"train": [broken.cast_column("image", datasets.Image())]}, "# card v2\n")
    assert (out / "README.md").read_text() == "# card v1\n"  # the good output is untouched
    assert sorted(p.name for p in tmp_path.iterdir() if p.name.startswith(".")) == []  # no temporary leftovers

    (tmp_path / "a.png").unlink()  # images are embedded: the source files are no longer needed
    write_dataset_folder(out, {"train": [_shard(tmp_path, ["c.png"])]}, "# card v2\n", files={"report.json": "{}"})
    assert datasets.load_dataset(str(out), split="train")["caption"] == ["c.png"]
    assert (out / "llm_cache" / "entry.json").is_file() and (out / "report.json").read_text() == "{}"


def test_write_refuses_a_file_as_output(tmp_path):
    target = tmp_path / "file"
    target.write_text("x")
    with pytest.raises(NotADirectoryError, match="file"):
        write_dataset_folder(target, {"train": [_shard(tmp_path, ["a.png"])]}, "# card\n")
    assert target.read_text() == "x"


def test_geovl_vqa_cli_writes_and_pushes(sar_data_dir, tmp_path, offline_hub):
    out = tmp_path / "vqa"
    geovl_main(["vqa", "--data-dir", str(sar_data_dir), "--out", str(out), "--mstar-per-class", "1",
                "--push-to-hub", "me/sar-vqa"])
    pushed = offline_hub.snapshot("me/sar-vqa", "dataset")
    files = sorted(p.relative_to(pushed).as_posix() for p in pushed.rglob("*") if p.is_file())
    written = sorted(p.relative_to(out).as_posix() for p in out.rglob("*") if p.is_file())
    assert "README.md" in files and files == written
    assert len(datasets.load_dataset(str(pushed), split="test")) == len(datasets.load_dataset(str(out), split="test"))
