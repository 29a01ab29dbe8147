"""VQA evaluation sets built from real HRSID / SAR-AIRcraft / MSTAR annotations."""

import json
from collections import Counter

import datasets
import pytest

from dataset_scripts.geovl.vqa_sets import (
    VIEWS,
    hrsid_vqa,
    load_vqa_sets,
    mstar_recognition_vqa,
    region_number,
    sar_aircraft_vqa,
    save_vqa_sets,
    target_regions,
    view_box,
    vqa_splits,
)


def test_region_numbering():
    # 3 x 3 grid, 1..9 row by row from the top-left; the box centre decides.
    assert region_number([0, 0, 10, 10], 900, 900) == 1
    assert region_number([890, 0, 10, 10], 900, 900) == 3
    assert region_number([440, 440, 20, 20], 900, 900) == 5
    assert region_number([0, 890, 10, 10], 900, 900) == 7
    assert region_number([890, 890, 10, 10], 900, 900) == 9
    assert region_number([290, 0, 20, 10], 900, 900) == 2  # centre x = 300 is the first column of region 2
    assert region_number([0, 0, 1800, 1800], 900, 900) == 9  # centre on the far border clamps to the last cell
    with pytest.raises(ValueError, match="outside"):
        region_number([-50, 0, 10, 10], 900, 900)


def test_hrsid_questions_match_annotations(sar_data_dir):
    full = hrsid_vqa(sar_data_dir)
    assert full.features["image"] == datasets.Image()
    assert full[0]["image"].size == (800, 800)
    ds = full.remove_columns("image")  # the checks below need no pixels
    coco = json.loads((sar_data_dir / "hrsid_samples" / "annotations_coco.json").read_text())
    counts = ds.filter(lambda r: r["task_type"] == "target count")
    assert len(counts) == 40
    assert sum(int(a) for a in counts["answer"]) == len(coco["annotations"]) == 215
    dense = counts.filter(lambda r: r["image_id"] == "hrsid/P0119_2400_3200_6000_6800")
    assert dense["answer"] == ["122"]
    recognition = ds.filter(lambda r: r["task_type"] == "target recognition")
    assert set(recognition["answer"]) == {"ship"}
    position = ds.filter(lambda r: r["task_type"] == "target position")
    assert len(position) == 40  # every sample image has at least one ship
    # Recognition asks once per occupied region, and the position answer lists exactly those regions.
    per_image = Counter(recognition["image_id"])
    for row in position:
        assert len(row["answer"].split(", ")) == per_image[row["image_id"]]


def test_sar_aircraft_questions_match_annotations(sar_data_dir):
    ds = sar_aircraft_vqa(sar_data_dir)
    counts = {r["image_id"].removeprefix("sar_aircraft/"): r["answer"] for r in ds if r["task_type"] == "target count"}
    assert counts == {
        "0004360": "5", "0004361": "1", "0004362": "2", "0004363": "2", "0004364": "2",
        "0004365": "1", "0004366": "3", "0004367": "5", "0004368": "5",
    }
    rows = [r for r in ds.remove_columns("image") if r["image_id"] == "sar_aircraft/0004360"]
    position = {r["question"].split("are the ")[1].split(" aircraft located?")[0]: r["answer"] for r in rows if r["task_type"] == "target position"}
    # 0004360 (800 x 800): Boeing787 box [76, 217, 87, 94] has its centre (119.5, 264) in region 1.
    assert position["Boeing787"] == "1"
    assert set(position) == {"Boeing787", "A320/321", "Boeing737", "other"}
    coco = json.loads((sar_data_dir / "sar_aircraft_samples" / "annotations_coco.json").read_text())
    names = {c["id"]: c["name"] for c in coco["categories"]}
    expected = Counter()
    for ann in coco["annotations"]:
        if ann["image_id"] == 1:
            expected[names[ann["category_id"]]] += 1
    assert set(expected) == set(position)
    recognition = [r for r in rows if r["task_type"] == "target recognition"]
    answered = Counter(n for r in recognition for n in r["answer"].split(", "))
    assert set(answered) == set(expected)
    assert all("What type of aircraft is in region" in r["question"] for r in recognition)


def test_target_regions_are_the_regions_of_every_box_of_an_image(sar_data_dir):
    ds = datasets.concatenate_datasets([sar_aircraft_vqa(sar_data_dir), mstar_recognition_vqa(sar_data_dir, "test", 1)])
    regions = target_regions(ds["task_type"], ds["answer"], ds["image_id"])
    coco = json.loads((sar_data_dir / "sar_aircraft_samples" / "annotations_coco.json").read_text())
    expected = {f"sar_aircraft/{image['file_name'].rsplit('.', 1)[0].rsplit('/', 1)[-1]}": {
        region_number(a["bbox"], image["width"], image["height"]) for a in coco["annotations"]
        if a["image_id"] == image["id"]} for image in coco["images"]}
    assert regions == expected  # every class's boxes; MSTAR's centred chips say nothing about regions
    assert target_regions(["target count"], ["0"], ["empty"]) == {"empty": set()}  # no target: every region is empty
    with pytest.raises(ValueError, match="image x has a position question but no count question"):
        target_regions(["target position"], ["3"], ["x"])


def test_mstar_recognition(sar_data_dir):
    small = mstar_recognition_vqa(sar_data_dir, max_per_class=3)
    classes = (sar_data_dir / "mstar_soc" / "classes.txt").read_text().split()
    assert len(small) == 30 and Counter(small["answer"]) == {c: 3 for c in classes}
    assert set(small["task_type"]) == {"target recognition"}
    full = mstar_recognition_vqa(sar_data_dir)
    assert len(full) == 2425  # the SOC test split (15 degrees)
    assert full[0]["image"].mode == "L"


def test_saved_sets_store_each_image_once_and_split_by_image(sar_data_dir, tmp_path):
    joined = save_vqa_sets(sar_data_dir, tmp_path, mstar_per_class=1)
    raw = datasets.load_dataset(str(tmp_path))
    assert sorted(raw) == ["images", "test", "train"]
    assert len(raw["images"]) == len(set(raw["images"]["image_id"])) == 40 + 9 + 10 + 10  # MSTAR: 1 train + 1 test per class
    assert set(raw["train"]["image"]) == set(raw["test"]["image"]) == {None}  # question rows only refer to images
    loaded = load_vqa_sets(tmp_path)
    assert {name: len(split) for name, split in loaded.items()} == {name: len(split) for name, split in joined.items()}
    assert len(loaded["train"]) + len(loaded["test"]) == 156 + 44 + 20
    for name in ("train", "test"):
        assert Counter(loaded[name]["dataset"])["mstar"] == 10
    # 4:1 by image: no image in both splits, a fifth of the HRSID images in test
    assert not set(loaded["train"]["image_id"]) & set(loaded["test"]["image_id"])
    assert len({i for i in loaded["test"]["image_id"] if i.startswith("hrsid/")}) == 8
    row = loaded["test"][0]
    assert row["image"].size == (800, 800)  # bytes were embedded, not paths
    dense = [r for r in loaded["train"].remove_columns("image") if r["image_id"] == "hrsid/P0119_2400_3200_6000_6800"]
    assert dense and ("target count", "122") in {(r["task_type"], r["answer"]) for r in dense}
    assert "target position" in (tmp_path / "README.md").read_text()
    # The task types are the model's (SarKnowlipProcessor.vqa_inputs rejects any other string).
    from modeling_knowlip.configuration_knowlip import VQA_TASK_TYPES

    assert set(loaded["test"]["task_type"]) == set(VQA_TASK_TYPES[:3])


@pytest.mark.parametrize("view", VIEWS)
def test_a_box_lands_where_the_pixels_of_its_view_are(view):
    """`view_box` follows PIL's transpose of the same name: the bright box of a non-square image is found where the
    mapped box says, in each of the 8 dihedral views."""
    import numpy as np
    from PIL import Image

    width, height, box = 90, 60, [10, 5, 20, 7]  # x, y, w, h
    pixels = np.zeros((height, width), dtype=np.uint8)
    pixels[5:12, 10:30] = 255
    image = Image.fromarray(pixels)
    viewed = np.asarray(image if not view else image.transpose(VIEWS[view]))
    rows, cols = np.nonzero(viewed)
    x, y, w, h = view_box(box, width, height, view)
    assert (cols.min(), rows.min(), cols.max() + 1 - cols.min(), rows.max() + 1 - rows.min()) == (x, y, w, h)


def test_train_views_multiply_the_detection_train_questions_and_leave_test_alone(sar_data_dir):
    plain, views = vqa_splits(sar_data_dir, 1), vqa_splits(sar_data_dir, 1, train_views=8)
    assert views["test"]["image_id"] == plain["test"]["image_id"] and views["test"]["answer"] == plain["test"]["answer"]
    detection = [i for i in plain["train"]["image_id"] if not i.startswith("mstar/")]
    assert Counter(i.split("@")[0] for i in views["train"]["image_id"] if not i.startswith("mstar/")) == Counter(
        {i: 8 * n for i, n in Counter(detection).items()})
    # a view's answers are its own: a ship in region 1 of an image is in region 3 of its left-right flip
    rows = views["train"].remove_columns("image")
    position = {r["image_id"]: r["answer"] for r in rows if r["task_type"] == "target position" and r["dataset"] == "hrsid"}
    flip = {1: 3, 2: 2, 3: 1, 4: 6, 5: 5, 6: 4, 7: 9, 8: 8, 9: 7}
    for image_id, answer in position.items():
        if "@" not in image_id:
            flipped = sorted(flip[int(r)] for r in answer.split(", "))
            assert position[f"{image_id}@flip_lr"] == ", ".join(map(str, flipped))
    with pytest.raises(ValueError, match="train_views must be 1 to 8"):
        vqa_splits(sar_data_dir, 1, train_views=9)
