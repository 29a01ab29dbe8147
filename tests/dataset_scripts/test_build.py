"""End to end: builders -> parquet shards + dataset card -> datasets.load_dataset(out_dir), on the real data."""

import json
import shutil
import subprocess
import sys
from collections import Counter, defaultdict

import numpy as np
import pytest
import tifffile
import yaml

from dataset_scripts import DatasetBuildError, array_from_example, build_dataset
from dataset_scripts.__main__ import main
from dataset_scripts.builders import MstarBuilder
from dataset_scripts.captions import ClassNameTable
from dataset_scripts.readers import read_mstar_phoenix

MSTAR_SOC_CLASSES = ["2S1", "BMP2", "BRDM_2", "BTR60", "BTR70", "D7", "T62", "T72", "ZIL131", "ZSU_23_4"]


def card_yaml(out_dir) -> dict:
    text = (out_dir / "README.md").read_text()
    assert text.startswith("---\n")
    return yaml.safe_load(text.split("---\n")[1])


# --- MSTAR SOC (full) ----------------------------------------------------------------------------------------------
def test_mstar_soc_loads_with_soc_splits_and_10_classes(mstar_soc_build, load_built, sar_data_dir):
    out, report = mstar_soc_build
    assert report.counts == {"train": 2746, "test": 2425} and not report.skipped
    ds = load_built(out)
    assert {split: ds[split].num_rows for split in ds} == {"train": 2746, "test": 2425}
    assert ds["train"].features["label"].names == MSTAR_SOC_CLASSES
    labels = Counter(ds["test"]["label"])
    assert len(labels) == 10 and labels[ds["test"].features["label"].str2int("BMP2")] == 195
    row = ds["train"][0]
    assert row["file"] == "train/2S1/hb19377.jpeg" and row["depression_deg"] == 17.0
    assert all("2S1 self-propelled howitzer" in caption for caption in row["captions"]) and len(row["captions"]) == 5
    stored = ds["train"].cast_column("image", ds["train"].features["image"].__class__(decode=False))[0]["image"]
    assert stored["bytes"] == (sar_data_dir / "mstar_soc" / "train" / "2S1" / "hb19377.jpeg").read_bytes()


def test_dataset_card_yaml(mstar_soc_build):
    out, _ = mstar_soc_build
    card = card_yaml(out)
    assert card["license"] == "other"
    assert card["configs"] == [{"config_name": "default", "data_files": [
        {"split": "train", "path": "data/train-*"}, {"split": "test", "path": "data/test-*"}]}]
    splits = {s["name"]: s["num_examples"] for s in card["dataset_info"]["splits"]}
    assert splits == {"train": 2746, "test": 2425}
    features = {f["name"]: f for f in card["dataset_info"]["features"]}
    assert features["image"]["dtype"] == "image"
    assert list(features["label"]["dtype"]["class_label"]["names"].values()) == MSTAR_SOC_CLASSES
    body = (out / "README.md").read_text()
    assert "| mstar | train | 2746 | 13730 |" in body and "- skipped items: 0" in body
    assert sorted(p.name for p in (out / "data").iterdir()) == [
        "test-00000-of-00001.parquet", "train-00000-of-00001.parquet"]


def test_builder_runs_directly_without_the_cli(sar_data_dir, tmp_path):
    builder = MstarBuilder(data_dir=str(sar_data_dir / "mstar_soc"), cache_dir=str(tmp_path), max_items=7, seed=2)
    builder.download_and_prepare()
    ds = builder.as_dataset()
    assert (ds["train"].num_rows, ds["test"].num_rows) == (7, 7)
    assert builder.report.limited == {"train": (7, 2746), "test": (7, 2425)}


# --- OpenSARShip ----------------------------------------------------------------------------------------------------
def test_opensarship_vv_vh_of_a_ship_share_a_split(sar_data_dir, tmp_path, load_built):
    report = build_dataset("opensarship", sar_data_dir / "opensarship", tmp_path / "out")
    assert report.total == 522 and len(report.repaired) == 4 and not report.skipped
    ds = load_built(tmp_path / "out")
    splits_of_ship, pols_of_ship = defaultdict(set), defaultdict(set)
    for split in ds:
        for ship, pol in zip(ds[split]["ship_id"], ds[split]["polarization"]):
            splits_of_ship[ship].add(split)
            pols_of_ship[ship].add(pol)
    assert len(splits_of_ship) == 351 and all(len(s) == 1 for s in splits_of_ship.values())
    pairs_by_split = Counter(next(iter(splits_of_ship[s])) for s, pols in pols_of_ship.items() if pols == {"vv", "vh"})
    assert pairs_by_split["train"] > 0 and pairs_by_split["test"] > 0
    assert 0.1 < ds["test"].num_rows / 522 < 0.3  # test_fraction 0.2, by ship
    card = (tmp_path / "out" / "README.md").read_text()
    assert card.count(r"malformed closing tag(s) <\ShipList> -> </ShipList>") == 4
    names, words = ds["train"].features["label"].names, ClassNameTable("opensarship")
    for row in ds["test"]:
        assert all(words[names[row["label"]]].singular in caption for caption in row["captions"])


# --- raw MSTAR ------------------------------------------------------------------------------------------------------
def test_mstar_raw_build_skips_and_reports_bad_files(sar_data_dir, tmp_path, load_built):
    source = tmp_path / "raw"
    source.mkdir()
    for name in ("BMP2_HB03787.000", "SLICY_HB14931.015", "T72_HB03787.015"):
        shutil.copy(sar_data_dir / "mstar_raw" / name, source / name)
    data = (sar_data_dir / "mstar_raw" / "BTR70_HB03787.004").read_bytes()
    (source / "BTR70_cut.004").write_bytes(data[:-4096])
    flipped = bytearray(data)
    flipped[3000] ^= 0x01
    (source / "BTR70_flipped.004").write_bytes(bytes(flipped))
    report = build_dataset("mstar_raw", source, tmp_path / "out")
    assert report.counts == {"train": 2, "test": 1}  # SLICY is the 15 deg chip
    assert sorted((path.rsplit("/", 1)[1], reason.split(":")[0]) for path, reason in report.skipped) == [
        ("BTR70_cut.004", "truncated"), ("BTR70_flipped.004", "MD5 mismatch")]
    card = (tmp_path / "out" / "README.md").read_text()
    assert "- skipped items: 2" in card and "BTR70_cut.004`: truncated" in card
    ds = load_built(tmp_path / "out")
    row = next(r for r in ds["train"] if r["file"] == "T72_HB03787.015")
    chip = read_mstar_phoenix(source / "T72_HB03787.015")
    np.testing.assert_array_equal(array_from_example(row)[:, :, 0], chip.magnitude)
    np.testing.assert_array_equal(np.asarray(row["phase"], np.float32).reshape(128, 128), chip.phase)
    assert row["bands"] == ["HH"] and row["unit"] == "amplitude" and row["serial_number"] == "132"
    assert json.loads(row["header"])["Chip_MD5_CheckSum"] == chip.header["Chip_MD5_CheckSum"]
    assert all("T-72 tank" in c for c in row["captions"])
    with pytest.raises(DatasetBuildError, match=r"BTR70_(cut|flipped).004: (truncated|MD5 mismatch)"):
        build_dataset("mstar_raw", source, tmp_path / "strict", strict=True)


# --- detection --------------------------------------------------------------------------------------------------------
def test_coco_and_voc_builds_keep_every_box(sar_data_dir, tmp_path, load_built):
    report = build_dataset("coco_det", sar_data_dir / "hrsid_samples" / "annotations_coco.json", tmp_path / "hrsid")
    assert report.total == 40 and not report.skipped
    ds = load_built(tmp_path / "hrsid")
    assert sum(len(boxes) for split in ds for boxes in ds[split]["boxes"]) == 215
    report = build_dataset("voc_det", sar_data_dir / "sar_aircraft_samples", tmp_path / "voc",
                           class_section="sar_aircraft", test_fraction=0.0)
    assert report.counts == {"train": 9}
    row = next(r for r in load_built(tmp_path / "voc")["train"] if r["file"] == "annotations_voc/0004364.xml")
    assert (row["width"], row["height"]) == (1200, 1200) and len(row["boxes"]) == 2
    assert sum("2 Boeing 737 aircraft" in c for c in row["captions"]) >= 2  # 2 count captions at least


def test_unknown_class_fails_before_building(sar_data_dir, tmp_path):
    with pytest.raises(DatasetBuildError, match=r"annotations_voc/0004360.xml: unknown class 'Boeing787'"):
        build_dataset("voc_det", sar_data_dir / "sar_aircraft_samples", tmp_path / "out")  # no sar_aircraft names
    assert not (tmp_path / "out").exists()


def test_box_outside_image_is_clipped_and_reported(sar_data_dir, tmp_path):
    source = tmp_path / "aircraft"
    shutil.copytree(sar_data_dir / "sar_aircraft_samples", source, ignore=shutil.ignore_patterns("*.json"))
    xml = source / "annotations_voc" / "0004365.xml"
    xml.write_text(xml.read_text().replace("<xmax>", "<xmax>9", 1))
    report = build_dataset("voc_det", source, tmp_path / "out", class_section="sar_aircraft")
    assert report.total == 9 and not report.skipped
    assert report.repaired == [(str(xml), report.repaired[0][1])]
    assert "clipped to the 800x800 image" in report.repaired[0][1]
    card = (tmp_path / "out" / "README.md").read_text()
    assert "- repaired files: 1" in card and "`annotations_voc/0004365.xml`: 0004365.jpg: box" in card
    xml.write_text(xml.read_text().replace("<xmin>", "<xmin>9", 1))  # now entirely outside: a bad item
    with pytest.raises(DatasetBuildError, match="0004365.xml: 0004365.jpg: box .* lies outside"):
        build_dataset("voc_det", source, tmp_path / "strict", class_section="sar_aircraft", strict=True)


# --- caption tables -------------------------------------------------------------------------------------------------
def test_caption_table_of_float_geotiffs(sar_data_dir, tmp_path, load_built):
    source = tmp_path / "tiles"
    source.mkdir()
    tile = sar_data_dir / "sarclip_examples" / "example.tif"
    shutil.copy(tile, source / "a.tif")
    (source / "corrupt.tif").write_bytes(tile.read_bytes()[:4000])
    (source / "train.tsv").write_text("filename\tcaption\na.tif\tan SAR image of urban zones\n"
                                      "a.tif\turban area with dense buildings\ncorrupt.tif\tbroken tile\n")
    (source / "test.tsv").write_text("filename\tcaption\na.tif\t \na.tif\tthe same tile as a test pair\n")
    report = build_dataset("csv", source, tmp_path / "out")
    assert report.counts == {"train": 1, "test": 1}
    assert sorted(reason.split(":")[0] for _, reason in report.skipped) == [
        "row 2", "truncated or corrupt TIFF"]
    assert "row 2: empty caption for image a.tif" in [reason for _, reason in report.skipped]
    ds = load_built(tmp_path / "out")
    row = ds["train"][0]
    assert row["captions"] == ["an SAR image of urban zones", "urban area with dense buildings"]
    assert row["bands"] == ["VV", "VH"] and row["unit"] == "dB" and row["shape"] == [224, 224, 2]
    np.testing.assert_array_equal(array_from_example(row), tifffile.imread(tile))


def test_caption_table_of_8bit_images(sar_data_dir, tmp_path, load_built):
    chips = sorted((sar_data_dir / "mstar_soc" / "test" / "ZIL131").glob("*.jpeg"))[:4]
    lines = ["filepath,title"] + [f"{chip},a SAR image of a ZIL-131 truck number {i}" for i, chip in enumerate(chips)]
    (tmp_path / "pairs.csv").write_text("\n".join(lines) + "\n")
    with pytest.raises(DatasetBuildError, match="no items found(.|\n)*row 2: image .* lies outside the source"):
        build_dataset("csv", tmp_path / "pairs.csv", tmp_path / "out", test_fraction=0.0)  # absolute paths
    report = build_dataset("csv", tmp_path / "pairs.csv", tmp_path / "out", test_fraction=0.0,
                           allow_outside_source=True)
    assert report.counts == {"train": 4}
    assert str(sar_data_dir) not in (tmp_path / "out" / "README.md").read_text()
    ds = load_built(tmp_path / "out")
    assert ds["train"][2]["image"].size == (192, 193) and ds["train"][2]["captions"][0].endswith("number 2")


# --- synthetic and the CLI ------------------------------------------------------------------------------------------
def test_cli_builds_synthetic_with_boxes(tmp_path, load_built, capsys):
    out = tmp_path / "syn"
    assert main(["build", "synthetic", "--out", str(out), "--num-train", "15", "--num-test", "5",
                 "--image-size", "64", "--with-boxes", "--seed", "3"]) == 0
    assert "Build report for 'synthetic': 20 examples (test: 5, train: 15)" in capsys.readouterr().out
    ds = load_built(out)
    assert (ds["train"].num_rows, ds["test"].num_rows) == (15, 5)
    assert all(1 <= len(boxes) <= 3 for boxes in ds["train"]["boxes"])
    assert card_yaml(out)["license"] == "apache-2.0"
    assert main(["build", "synthetic", "--out", str(out)]) == 2  # not empty, no --overwrite
    capsys.readouterr()
    assert main(["build", "mstar", "--out", str(tmp_path / "x"), "--num-train", "3", "--source", "."]) == 2
    assert capsys.readouterr().err == "error: mstar does not take --num-train\n"


def test_cli_strict_exit_code_names_the_file(sar_data_dir, tmp_path, capsys):
    source = tmp_path / "soc" / "test" / "T72"
    source.mkdir(parents=True)
    good = sorted((sar_data_dir / "mstar_soc" / "test" / "T72").glob("*.jpeg"))[0]
    shutil.copy(good, source / good.name)
    (source / "zz_cut.jpeg").write_bytes(good.read_bytes()[:700])
    assert main(["build", "mstar", "--source", str(tmp_path / "soc"), "--out", str(tmp_path / "o1")]) == 0
    assert "zz_cut.jpeg: cannot read SAR image" in capsys.readouterr().out
    assert main(["build", "mstar", "--source", str(tmp_path / "soc"), "--out", str(tmp_path / "o2"), "--strict"]) == 2
    assert "zz_cut.jpeg: cannot read SAR image" in capsys.readouterr().err


def test_python_dash_m_entry_point(tmp_path, repo_root):
    result = subprocess.run(
        [sys.executable, "-m", "dataset_scripts", "build", "synthetic", "--out", str(tmp_path / "o"),
         "--num-train", "4", "--num-test", "2", "--image-size", "32"],
        cwd=repo_root, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert "Build report for 'synthetic': 6 examples (test: 2, train: 4)" in result.stdout


# --- sarclip_mix ------------------------------------------------------------------------------------------------------
def test_sarclip_mix_concatenates_sources_like_table_i(sar_data_dir, tmp_path, load_built):
    components = [
        ("mstar", str(sar_data_dir / "mstar_soc"), {"max_items": 20}),
        ("opensarship", str(sar_data_dir / "opensarship"), {}),
        ("coco_det", str(sar_data_dir / "hrsid_samples" / "annotations_coco.json"), {}),
        ("voc_det", str(sar_data_dir / "sar_aircraft_samples"), {"class_section": "sar_aircraft"}),
    ]
    report = build_dataset("sarclip_mix", sar_data_dir, tmp_path / "mix", components=components)
    assert report.total == 20 + 20 + 522 + 40 + 9
    ds = load_built(tmp_path / "mix")
    per_dataset = Counter(d for split in ds for d in ds[split]["dataset"])
    assert per_dataset == {"mstar_soc": 40, "opensarship": 522, "hrsid_samples": 40, "sar_aircraft_samples": 9}
    assert set(ds["train"]["task"]) == {"classification", "detection"}
    assert all(len(c) == 5 for split in ds for c in ds[split]["captions"])
    card = (tmp_path / "mix" / "README.md").read_text()
    assert "| mstar_soc | train | 20 | 100 |" in card and "| opensarship | test |" in card
    assert "`max_items` kept 20 of 2746 items of `mstar/train`" in card


def test_complex_tiff_round_trip_through_a_caption_table(tmp_path, load_built):
    rng = np.random.default_rng(1)
    slc = (rng.normal(size=(16, 24, 2)) + 1j * rng.normal(size=(16, 24, 2))).astype(np.complex64)
    tifffile.imwrite(tmp_path / "slc.tif", slc, photometric="minisblack", planarconfig="contig")
    (tmp_path / "slc.csv").write_text("filepath,title\nslc.tif,a complex SAR tile\n")
    build_dataset("csv", tmp_path / "slc.csv", tmp_path / "out", bands=["HH", "HV"], test_fraction=0.0)
    row = load_built(tmp_path / "out")["train"][0]
    assert row["unit"] == "complex" and row["bands"] == ["HH.real", "HH.imag", "HV.real", "HV.imag"]
    np.testing.assert_array_equal(array_from_example(row), slc)


def test_max_shard_size_splits_into_loadable_shards(tmp_path, load_built):
    build_dataset("synthetic", None, tmp_path / "out", num_train=450, num_test=10, image_size=64,
                  max_shard_size="100KB")
    train = sorted(p.name for p in (tmp_path / "out" / "data").glob("train-*"))
    assert len(train) > 1 and train == [f"train-{i:05d}-of-{len(train):05d}.parquet" for i in range(len(train))]
    ds = load_built(tmp_path / "out")
    assert ds["train"].num_rows == 450 and ds["train"][449]["label"] == 449 % 5


def test_fluency_hook_applies_to_every_image_and_bad_output_is_skipped(sar_data_dir, tmp_path, load_built):
    source = sar_data_dir / "mstar_soc"
    build_dataset("mstar", source, tmp_path / "upper", max_items=3,
                  fluency_check=lambda captions: [c.upper() for c in captions])
    ds = load_built(tmp_path / "upper")
    assert all(c.isupper() for split in ds for captions in ds[split]["captions"] for c in captions)
    # a check that drops captions: every item is skipped and reported, so the build fails and says why
    with pytest.raises(DatasetBuildError, match=r"every item was skipped(.|\n)*skipped: 4(.|\n)*fluency check"):
        build_dataset("mstar", source, tmp_path / "bad", max_items=2, fluency_check=lambda captions: captions[:4])
    assert not (tmp_path / "bad").exists()
    with pytest.raises(DatasetBuildError, match=r"^train/\S+\.jpeg: fluency check returned"):
        build_dataset("mstar", source, tmp_path / "bad2", max_items=2, fluency_check=lambda c: c[:4], strict=True)


def test_cli_fluency_check_and_class_names(sar_data_dir, tmp_path, load_built):
    (tmp_path / "names.yaml").write_text("T72: main battle tank T-72\n")
    assert main(["build", "mstar", "--source", str(sar_data_dir / "mstar_soc"), "--out", str(tmp_path / "o"),
                 "--max-items", "40", "--seed", "1", "--class-names", str(tmp_path / "names.yaml"),
                 "--fluency-check", "builtins:sorted"]) == 0
    ds = load_built(tmp_path / "o")
    rows = [row for split in ds for row in ds[split]]
    assert all(row["captions"] == sorted(row["captions"]) for row in rows)
    t72 = [row for row in rows if row["file"].split("/")[1] == "T72"]
    assert t72 and all("main battle tank T-72" in c for row in t72 for c in row["captions"])
