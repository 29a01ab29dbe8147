"""Readers on the real files of shared/data (see each folder's SOURCE.md) and on damaged copies of them."""

import csv
import json
import re
from collections import Counter

import numpy as np
import pytest
import tifffile

from dataset_scripts import DatasetBuildError
from dataset_scripts.readers import (
    SOC_DEPRESSION_DEG,
    is_phoenix_file,
    list_mstar_chip_folders,
    list_opensarship_chips,
    read_caption_table,
    read_coco,
    read_image_file,
    read_mstar_phoenix,
    read_ship_xml,
    read_tiff,
    read_voc,
)
from dataset_scripts.report import BuildReport


def _labels_csv(root) -> dict[str, dict]:
    """The data folder's own labels.csv, by relative path."""
    with open(root / "labels.csv", newline="") as handle:
        return {row["path"]: row for row in csv.DictReader(handle)}


# --- MSTAR JPEG chip folders ------------------------------------------------------------------------------------------
def test_mstar_chip_folders_match_labels_csv(sar_data_dir):
    root = sar_data_dir / "mstar_soc"
    report = BuildReport("mstar")
    chips, expected = list_mstar_chip_folders(root, report), _labels_csv(root)
    assert {chip.relative_path for chip in chips} == set(expected)
    for chip in chips:
        row = expected[chip.relative_path]
        assert (chip.split, chip.class_name) == (row["split"], row["label"])
        assert chip.depression_deg == float(row["depression_deg"]) == SOC_DEPRESSION_DEG[chip.split]
    assert Counter(chip.split for chip in chips) == {"train": 2746, "test": 2425}
    ignored = sorted(path for path, _ in report.ignored)
    assert ignored == [str(root / name) for name in ("SOURCE.md", "classes.txt", "labels.csv")]


def test_mstar_jpeg_chip_decodes_to_its_native_size(sar_data_dir):
    path = sorted((sar_data_dir / "mstar_soc" / "train" / "D7").glob("*.jpeg"))[0]
    image = read_image_file(path)  # D7 chips are 177x178 (SOURCE.md)
    assert image.array.dtype == np.uint8 and image.array.shape == (178, 177, 1)  # one grey band, bands last
    assert (image.width, image.height) == (177, 178)
    assert image.data == image.path.read_bytes()


def test_truncated_jpeg_names_the_file(sar_data_dir, tmp_path):
    source = next((sar_data_dir / "mstar_soc" / "test" / "T72").glob("*.jpeg"))
    bad = tmp_path / "cut.jpeg"
    bad.write_bytes(source.read_bytes()[:600])
    with pytest.raises(DatasetBuildError, match="cut.jpeg: cannot read SAR image"):
        read_image_file(bad)


# --- raw MSTAR Phoenix files ------------------------------------------------------------------------------------------
def _manifest(sar_data_dir):
    with open(sar_data_dir / "mstar_raw" / "manifest.csv", newline="") as handle:
        return {row["file"]: row for row in csv.DictReader(handle)}


def test_phoenix_reader_matches_manifest(sar_data_dir):
    manifest = _manifest(sar_data_dir)
    assert len(manifest) == 6
    for name, row in manifest.items():
        path = sar_data_dir / "mstar_raw" / name
        assert is_phoenix_file(path)
        chip = read_mstar_phoenix(path)  # verifies Chip_MD5_CheckSum against the payload
        rows, cols = int(row["rows"]), int(row["cols"])
        assert chip.magnitude.shape == chip.phase.shape == (rows, cols)
        assert chip.magnitude.dtype == np.float32
        assert chip.header["PhoenixHeaderLength"] == int(row["header_length"])
        assert chip.target_type == row["target_type"]
        assert str(chip.header["TargetSerNum"]) == row["target_serial"]
        assert chip.azimuth_deg == pytest.approx(float(row["target_az_deg"]), abs=1e-4)
        assert chip.depression_deg == float(row["desired_depression_deg"])
        assert chip.header["Chip_MD5_CheckSum"] == row["chip_md5"]
        # values as stored: the payload re-encoded big-endian is byte-identical
        payload = path.read_bytes()[chip.header["PhoenixHeaderLength"]:]
        assert np.concatenate([chip.magnitude.ravel(), chip.phase.ravel()]).astype(">f4").tobytes() == payload
        assert chip.magnitude.min() >= 0 and 0 <= chip.phase.min() and chip.phase.max() <= 2 * np.pi + 1e-4
    assert not is_phoenix_file(sar_data_dir / "mstar_raw" / "manifest.csv")


def test_phoenix_truncated_file_is_an_error_naming_it(sar_data_dir, tmp_path):
    data = (sar_data_dir / "mstar_raw" / "BMP2_HB03787.000").read_bytes()
    bad = tmp_path / "BMP2_cut.000"
    bad.write_bytes(data[:-100])
    with pytest.raises(DatasetBuildError, match=r"BMP2_cut.000: truncated: 128x128 chip needs 131072 payload bytes"):
        read_mstar_phoenix(bad)
    header_only = tmp_path / "header_cut.000"
    header_only.write_bytes(data[:1000])
    with pytest.raises(DatasetBuildError, match="header_cut.000: truncated Phoenix header"):
        read_mstar_phoenix(header_only)


def test_phoenix_md5_mismatch_is_an_error(sar_data_dir, tmp_path):
    data = bytearray((sar_data_dir / "mstar_raw" / "T72_HB03787.015").read_bytes())
    data[-5] ^= 0xFF  # one flipped byte in the phase plane
    bad = tmp_path / "T72_flipped.015"
    bad.write_bytes(bytes(data))
    with pytest.raises(DatasetBuildError, match="T72_flipped.015: MD5 mismatch"):
        read_mstar_phoenix(bad)
    assert read_mstar_phoenix(bad, verify_md5=False).phase.shape == (128, 128)


# --- OpenSARShip ------------------------------------------------------------------------------------------------------
def test_ship_xml_backslash_tag_is_repaired_and_reported(sar_data_dir):
    annotations = sar_data_dir / "opensarship" / "annotations"
    report = BuildReport("opensarship")
    malformed = [p for p in sorted(annotations.rglob("Ship.xml")) if b"<\\ShipList>" in p.read_bytes()]
    assert len(malformed) == 4  # SOURCE.md: 4 of the 8 files
    ships = read_ship_xml(malformed[0], report)
    assert ships and report.repaired == [(str(malformed[0]), r"malformed closing tag(s) <\ShipList> -> </ShipList>")]


def test_malformed_ship_xml_error_names_the_file(tmp_path):
    bad = tmp_path / "Ship.xml"
    bad.write_text("<ShipList><ship><SARShipInformation>")
    with pytest.raises(DatasetBuildError, match="Ship.xml: malformed XML"):
        read_ship_xml(bad)


def test_opensarship_chips_match_labels_csv(sar_data_dir):
    root = sar_data_dir / "opensarship"
    report = BuildReport("opensarship")
    chips, expected = list_opensarship_chips(root, report), _labels_csv(root)
    assert len(chips) == len(expected) == 522
    assert len({chip.ship_id for chip in chips}) == 351
    for chip in chips:
        row = expected[chip.path.relative_to(root).as_posix()]
        assert (chip.label, chip.polarization, chip.scene) == (row["label"], row["polarization"], row["scene"])
        assert (chip.ship.center_x, chip.ship.center_y) == (int(row["center_x"]), int(row["center_y"]))
        assert chip.ship.ais_ship_type_code == int(row["ais_ship_type_code"])
        assert chip.ship.elaborated_type == row["elaborated_type"]
        assert chip.ship.incidence_deg == pytest.approx(float(row["incidence_deg"]), abs=1e-5)
    assert len(report.repaired) == 4 and not report.skipped


# --- (Geo)TIFF --------------------------------------------------------------------------------------------------------
def test_example_tif_keeps_both_float_bands_and_geo(sar_data_dir):
    raster = read_tiff(sar_data_dir / "sarclip_examples" / "example.tif")
    assert raster.array.shape == (224, 224, 2) and raster.array.dtype == np.float32
    assert -32 < raster.array.min() < -31 and raster.array.max() <= 0.001  # dB values as stored
    assert raster.geo["ModelPixelScale"][:2] == [10.0, 10.0]
    assert raster.geo["ProjectedCSTypeGeoKey"] == 32618  # WGS 84 / UTM 18N
    json.dumps(raster.geo)  # plain values


@pytest.mark.parametrize("kind", ["uint8", "uint16", "float32_planar", "complex64", "pages"])
def test_tiff_layouts_read_bands_last(tmp_path, kind):
    rng = np.random.default_rng(0)
    path = tmp_path / f"{kind}.tif"
    if kind == "uint8":
        expected = rng.integers(0, 255, (20, 30), dtype=np.uint8)
        tifffile.imwrite(path, expected)
        expected = expected[:, :, None]
    elif kind == "uint16":
        expected = rng.integers(0, 65535, (20, 30, 3), dtype=np.uint16)
        tifffile.imwrite(path, expected, photometric="rgb")
    elif kind == "float32_planar":
        planes = rng.normal(-15, 5, (2, 20, 30)).astype(np.float32)
        tifffile.imwrite(path, planes, planarconfig="separate", photometric="minisblack")
        expected = np.moveaxis(planes, 0, -1)
    elif kind == "complex64":
        expected = (rng.normal(size=(20, 30)) + 1j * rng.normal(size=(20, 30))).astype(np.complex64)
        tifffile.imwrite(path, expected)
        expected = expected[:, :, None]
    else:
        planes = rng.normal(size=(4, 20, 30)).astype(np.float32)
        with tifffile.TiffWriter(path) as tif:
            for plane in planes:
                tif.write(plane, contiguous=True)
        expected = np.moveaxis(planes, 0, -1)
    raster = read_tiff(path)
    assert raster.array.dtype == expected.dtype
    np.testing.assert_array_equal(raster.array, expected)
    assert raster.geo is None


def test_corrupt_tiff_names_the_file(sar_data_dir, tmp_path):
    data = (sar_data_dir / "sarclip_examples" / "example.tif").read_bytes()
    (tmp_path / "cut.tif").write_bytes(data[:5000])
    with pytest.raises(DatasetBuildError, match="cut.tif: truncated or corrupt TIFF"):
        read_tiff(tmp_path / "cut.tif")
    (tmp_path / "junk.tif").write_bytes(b"not a tiff at all")
    with pytest.raises(DatasetBuildError, match="junk.tif: cannot read SAR image"):
        read_tiff(tmp_path / "junk.tif")
    with pytest.raises(DatasetBuildError, match="missing.tif: no such SAR image file"):
        read_tiff(tmp_path / "missing.tif")
    tifffile.imwrite(tmp_path / "int32.tif", np.zeros((8, 8), np.int32))
    with pytest.raises(DatasetBuildError, match="int32.tif: unsupported sample type int32"):
        read_tiff(tmp_path / "int32.tif")


# --- detection annotations --------------------------------------------------------------------------------------------
def test_hrsid_coco(sar_data_dir):
    names, images = read_coco(sar_data_dir / "hrsid_samples" / "annotations_coco.json")
    assert names == ["ship"]
    assert len(images) == 40 and sum(len(im.boxes) for im in images) == 215
    report = BuildReport("coco_det")
    for image in images:
        assert image.image_path.is_file() and (image.width, image.height) == (800, 800)
        image.clip_boxes(report)
    assert not report.repaired  # every box lies inside its image
    widths = [box.x1 - box.x0 for im in images for box in im.boxes]
    assert min(widths) == 8 and max(widths) == 253  # SOURCE.md: box widths 8-253 px


def test_sar_aircraft_voc_equals_its_coco_export(sar_data_dir):
    root = sar_data_dir / "sar_aircraft_samples"
    names, coco_images = read_coco(root / "annotations_coco.json")
    assert names == ["A220", "A320/321", "A330", "ARJ21", "Boeing737", "Boeing787", "other"]
    voc_images = [read_voc(path, root / "images") for path in sorted((root / "annotations_voc").glob("*.xml"))]
    assert len(voc_images) == 9 and sum(len(im.boxes) for im in voc_images) == 26
    coco_by_name = {im.image_path.name: im for im in coco_images}
    for voc in voc_images:
        coco = coco_by_name[voc.image_path.name]
        assert voc.image_path.is_file() and (voc.width, voc.height) == (coco.width, coco.height)
        assert sorted((b.category, b.xyxy) for b in voc.boxes) == sorted((b.category, b.xyxy) for b in coco.boxes)
    by_image = {im.image_path.name: Counter(b.category for b in im.boxes) for im in voc_images}
    assert by_image["0004367.jpg"] == {"A220": 4, "Boeing787": 1}  # SOURCE.md table


def test_box_outside_image_is_clipped_and_reported(sar_data_dir, tmp_path):
    xml = (sar_data_dir / "sar_aircraft_samples" / "annotations_voc" / "0004365.xml").read_text()
    bad = tmp_path / "0004365.xml"
    bad.write_text(xml.replace("<xmax>", "<xmax>9", 1))  # a 4-digit xmax, far right of the 800 px image
    annotated = read_voc(bad, sar_data_dir / "sar_aircraft_samples" / "images")
    report = BuildReport("voc_det")
    annotated.clip_boxes(report)
    assert max(box.x1 for box in annotated.boxes) == 800
    assert [path for path, _ in report.repaired] == [str(bad)]
    assert re.match(r"0004365.jpg: box .* clipped to the 800x800 image", report.repaired[0][1])
    bad.write_text(xml.replace("<xmin>", "<xmin>9", 1).replace("<xmax>", "<xmax>9", 1))  # entirely right of it
    with pytest.raises(DatasetBuildError, match=r"0004365.xml: 0004365.jpg: box .* lies outside the 800x800 image"):
        read_voc(bad, sar_data_dir / "sar_aircraft_samples" / "images").clip_boxes(report)


def test_coco_unknown_category_names_the_json(sar_data_dir, tmp_path):
    coco = json.loads((sar_data_dir / "hrsid_samples" / "annotations_coco.json").read_text())
    coco["annotations"][3]["category_id"] = 99
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps(coco))
    with pytest.raises(DatasetBuildError, match="bad.json: annotation .* has unknown category id 99"):
        read_coco(bad)


# --- caption tables ---------------------------------------------------------------------------------------------------
def test_sarclip_retrieval_tsv(sar_data_dir):
    path = sar_data_dir / "sarclip_examples" / "retrieval_captions_no_images.tsv"
    rows = read_caption_table(path, BuildReport("csv"))
    assert len(rows) == 52
    assert rows[0].image_path == path.parent / "data" / "retrieval" / "001.tif"
    assert rows[0].captions == ["in total , 5 motorized transport are present in the image ."]


def test_caption_table_groups_rows_and_reports_empty_captions(tmp_path):
    table = tmp_path / "pairs.csv"
    table.write_text('filepath,title\nimgs/a.png,"first, with comma"\nimgs/a.png,second\nimgs/b.png,\n'
                     "imgs/c.png,  \n")
    report = BuildReport("csv")
    rows = read_caption_table(table, report)
    assert [(r.image_path, r.captions) for r in rows] == [(tmp_path / "imgs/a.png", ["first, with comma", "second"])]
    assert report.skipped == [(str(table), "row 4: empty caption for image imgs/b.png"),
                              (str(table), "row 5: empty caption for image imgs/c.png")]
    with pytest.raises(DatasetBuildError, match="pairs.csv: row 4: empty caption for image imgs/b.png"):
        read_caption_table(table, BuildReport("csv", strict=True))


def test_caption_table_json_formats(tmp_path):
    (tmp_path / "caps.jsonl").write_text('{"image": "x.tif", "captions": ["a", "b"]}\n{"image": "y.tif", "text": 1}\n')
    rows = read_caption_table(tmp_path / "caps.jsonl", BuildReport("csv"), caption_key="captions")
    assert [(r.image_path.name, r.captions) for r in rows] == [("x.tif", ["a", "b"])]
    coco = {"images": [{"id": 1, "file_name": "p.png"}], "annotations": [
        {"image_id": 1, "caption": "one"}, {"image_id": 1, "caption": "two"}]}
    (tmp_path / "coco.json").write_text(json.dumps(coco))
    rows = read_caption_table(tmp_path / "coco.json", BuildReport("csv"))
    assert [(r.image_path.name, r.captions) for r in rows] == [("p.png", ["one", "two"])]
