"""`python -m train.knowlip chain example.tif` end to end, offline, on the real example GeoTIFF: SRC tiles ->
screening -> HCoT captions (no-LLM backend) -> SCIO -> evaluation."""

import json

import datasets

from dataset_scripts.geovl.hcot import SUBTEXT_FIELDS
from train.knowlip import load_text_version
from train.knowlip.__main__ import main


def test_chain_runs_end_to_end_on_the_example_geotiff(sar_data_dir, tmp_path, capsys):
    out = tmp_path / "chain"
    assert main(["chain", str(sar_data_dir / "sarclip_examples" / "example.tif"), "--out", str(out),
                 "--stage-epochs", "1,1,1"]) == 0
    report = json.loads((out / "chain_report.json").read_text())
    assert f'"total_seconds": {report["total_seconds"]}' in capsys.readouterr().out
    assert report["rows"]["large"] == 4 and sum(report["rows"].values()) == report["train_tiles"] + report["test_tiles"]
    tiles = datasets.load_dataset(str(out / "tiles"))
    # split by large tile: a test tile's large ancestor holds no training tile
    test_roots = {i for i in tiles["test"]["id"] if i.split("_")[-3].endswith("L")}
    assert len(test_roots) == 1 and not test_roots & set(tiles["train"]["id"])
    assert "latitude" in tiles["train"][0]["geographic_context"]  # the facts backend used the geo-referencing
    v2 = load_text_version(out / "scio", 2)
    assert len(v2) == report["train_tiles"] and {len(t) for t in v2["subtexts"]} == {len(SUBTEXT_FIELDS)}
    assert 0 <= report["retrieval_mean_recall"] <= 100 and report["captioning_cider"] >= 0
    assert set(report["seconds"]) == {"captioning", "split", "scio", "evaluation"}


def test_a_second_chain_into_a_used_folder_is_refused_before_it_writes(sar_data_dir, tmp_path, capsys):
    out, other = tmp_path / "chain", tmp_path / "other.tif"
    geotiff = sar_data_dir / "sarclip_examples" / "example.tif"
    other.write_bytes(geotiff.read_bytes())
    assert main(["chain", str(geotiff), "--out", str(out), "--stage-epochs", "1,1,1"]) == 0
    written = {path: path.read_bytes() for path in out.rglob("*") if path.is_file()}
    capsys.readouterr()
    assert main(["chain", str(other), "--out", str(out), "--stage-epochs", "1,1,1"]) == 2
    err = capsys.readouterr().err
    assert f"error: {out}: holds a run (geovl/, tiles/, scio/, eval/, chain_report.json); pass --overwrite" in err
    assert "--resume" not in err  # the chain has none to offer
    assert {path: path.read_bytes() for path in out.rglob("*") if path.is_file()} == written  # nothing touched
    old_weights = out / "scio" / "model" / "model.safetensors"
    old_states = {path: path.stat().st_mtime_ns for path in (out / "scio").rglob("trainer_state.json")}
    assert old_states
    assert main(["chain", str(other), "--out", str(out), "--stage-epochs", "1,1,1", "--overwrite"]) == 0
    # SCIO trained afresh (the old checkpoints were cleared, not resumed from) and replaced the model
    new_states = {path: path.stat().st_mtime_ns for path in (out / "scio").rglob("trainer_state.json")}
    assert new_states and all(path not in old_states or mtime > old_states[path] for path, mtime in new_states.items())
    assert old_weights.stat().st_mtime_ns > max(old_states.values())
    assert json.loads((out / "chain_report.json").read_text())["train_tiles"] > 0
