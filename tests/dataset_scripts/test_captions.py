"""SARCLIP-1M caption recipe (paper section III-B): templates, class names, regions, directions, determinism."""

import pytest
import yaml

from dataset_scripts import DatasetBuildError
from dataset_scripts.captions import (
    CAPTIONS_PER_IMAGE,
    REGIONS,
    ClassNameTable,
    apply_fluency_check,
    assign_region,
    classification_captions,
    detection_captions,
    iou,
    load_templates,
    objects_phrase,
    region_boxes,
    relative_direction,
)
from dataset_scripts.captions.class_names import CLASS_NAMES_FILE


@pytest.fixture(scope="module")
def names():
    table = ClassNameTable("common")
    return {"ship": table["ship"], "aircraft": table["aircraft"]}


def test_ten_templates_with_the_papers_examples_verbatim():
    templates = load_templates()
    assert len(templates.general) == len(templates.complex) == 5
    assert len(set(templates.classification)) == 10
    assert "A SAR image of the {class}" in templates.general
    assert "A SAR image reveals the distinct texture and structure of the {class}." in templates.complex
    assert "A SAR image of {objects} located in the {region} of the image." in templates.absolute
    assert [templates.regions[r] for r in REGIONS] == [
        "upper left", "upper right", "bottom left", "bottom right", "center"]
    assert sorted(templates.directions) == ["above", "below", "left", "right"]


def test_class_names_are_data_and_normalised():
    mstar = ClassNameTable("mstar")
    for raw in ("BTR_60", "BTR60", "btr-60"):
        assert mstar[raw].singular == "BTR-60 armored personnel carrier"
    assert mstar["ZSU_23_4"].plural == "ZSU-23-4 self-propelled anti-aircraft guns"
    assert mstar["ship"].singular == "ship"  # falls back to `common`
    aircraft = ClassNameTable("sar_aircraft")
    assert aircraft["A320/321"].counted(2) == "2 A320/321 aircraft"
    assert aircraft["A220"].counted(1, article=True) == "an A220 aircraft"
    # every MSTAR SOC folder name of the real data has caption words
    data = yaml.safe_load(CLASS_NAMES_FILE.read_text())
    assert "mstar" in data and "opensarship" in data
    with pytest.raises(KeyError, match="unknown class 'T90'"):
        mstar["T90"]
    extra = ClassNameTable("mstar", extra={"T90": "T-90 tank", "BTR_60": {"name": "BTR-60", "plural": "BTR-60s"}})
    assert extra["t90"].plural == "T-90 tanks" and extra["BTR60"].plural == "BTR-60s"


def test_classification_captions_five_distinct_templates_deterministic():
    templates = load_templates()
    captions = classification_captions("T-72 tank", "train/T72/hb03787.jpeg", seed=0)
    assert len(captions) == CAPTIONS_PER_IMAGE == len(set(captions))
    expected = {t.format_map({"class": "T-72 tank"}) for t in templates.classification}
    assert set(captions) <= expected
    assert captions == classification_captions("T-72 tank", "train/T72/hb03787.jpeg", seed=0)
    by_item = {tuple(classification_captions("T-72 tank", f"k{i}", seed=0)) for i in range(20)}
    by_seed = {tuple(classification_captions("T-72 tank", "k", seed=seed)) for seed in range(20)}
    assert len(by_item) > 10 and len(by_seed) > 10  # the draw depends on (seed, item)

def test_classification_captions_fixed_output():
    # checked by hand: five different templates of templates.yaml, each with the normalised class name
    assert classification_captions("BTR-60 armored personnel carrier", "train/BTR60/hb1.jpeg", seed=0) == [
        "In this SAR image, strong scattering points and shadows characterise the BTR-60 armored personnel carrier.",
        "A synthetic aperture radar image of the BTR-60 armored personnel carrier.",
        "The speckled SAR image captures the geometric structure and scattering signature of the BTR-60 armored "
        "personnel carrier.",
        "This SAR image shows the BTR-60 armored personnel carrier, whose outline stands out from the surrounding "
        "clutter.",
        "A SAR image reveals the distinct texture and structure of the BTR-60 armored personnel carrier.",
    ]


def test_regions_by_iou():
    regions = region_boxes(100, 100)
    assert regions["center"] == (25, 25, 75, 75)
    assert iou((0, 0, 50, 50), (0, 0, 50, 50)) == 1.0
    assert iou((0, 0, 10, 10), (5, 0, 15, 10)) == pytest.approx(50 / 150)
    cases = {
        (10, 10, 30, 30): "upper_left",
        (70, 5, 95, 40): "upper_right",
        (5, 60, 45, 95): "bottom_left",
        (60, 60, 90, 90): "bottom_right",
        (40, 40, 60, 60): "center",  # inside the centre box: IoU 400/2500 beats 100/2800 with each quadrant
        (20, 20, 80, 80): "center",  # 2500/3600 vs 900/5200
        (30, 10, 60, 40): "upper_left",  # overlaps: UL 20*30=600, UR 10*30=300, center 30*15=450
        (45, 55, 75, 95): "bottom_right",  # overlaps: BR 25*40=1000, center 30*20=600, BL 5*40=200
        (40, 10, 60, 30): "upper_left",  # tie UL/UR in IoU and centre distance: first in REGIONS order
    }
    for box, region in cases.items():
        assert assign_region(box, 100, 100) == region, box
    assert assign_region((150, 10, 190, 40), 200, 100) == "upper_right"  # non-square image


def test_relative_direction():
    a = (10, 10, 20, 20)
    assert relative_direction(a, (10, 50, 20, 60)) == "above"
    assert relative_direction((10, 50, 20, 60), a) == "below"
    assert relative_direction(a, (50, 12, 60, 22)) == "left"
    assert relative_direction((50, 12, 60, 22), a) == "right"
    assert relative_direction(a, (40, 40, 50, 50)) == "above"  # |dy| == |dx|: vertical wins
    assert relative_direction(a, a) is None


def test_objects_phrase(names):
    assert objects_phrase(["ship"], names, article=False) == "ship"
    assert objects_phrase(["ship"], names, article=True) == "a ship"
    assert objects_phrase(["aircraft", "ship", "ship"], names, article=False) == "2 ships and 1 aircraft"
    assert objects_phrase(["aircraft", "ship", "ship"], names, article=True) == "2 ships and an aircraft"
    assert objects_phrase(["aircraft", "aircraft"], names, article=False) == "2 aircraft"


def test_detection_captions_hand_checked(names):
    # 100x100 image: ship upper left, aircraft bottom right, ship in the centre
    boxes = [((10, 10, 30, 30), "ship"), ((60, 60, 90, 90), "aircraft"), ((40, 40, 60, 60), "ship")]
    captions = detection_captions(boxes, 100, 100, names, "img_1", seed=0)
    assert captions == [
        "Bright radar backscatter outlines the shape of the 2 ships and 1 aircraft in this SAR image.",
        "A radar image showing the 2 ships and 1 aircraft.",
        "In this SAR image, a ship can be seen in the upper left.",
        "The bottom right of this SAR image contains an aircraft.",
        "In this SAR image, the aircraft in the bottom right is positioned below the ship in the upper left.",
    ]
    assert captions == detection_captions(boxes, 100, 100, names, "img_1", seed=0)
    assert detection_captions(boxes, 100, 100, names, "img_1", seed=1) == [
        "The 2 ships and 1 aircraft seen in a SAR image.",
        "The speckled SAR image captures the geometric structure and scattering signature of the 2 ships and "
        "1 aircraft.",
        "The bottom right of this SAR image contains an aircraft.",
        "In this SAR image, a ship can be seen in the center.",
        "In this SAR image, the ship in the upper left is positioned above the aircraft in the bottom right.",
    ]


def test_detection_captions_single_and_empty(names):
    one = detection_captions([((60, 5, 95, 30), "ship")], 100, 100, names, "one", seed=0)
    assert len(set(one)) == 5
    absolute = [c for c in one if "upper right" in c]
    assert len(absolute) == 1 and "a ship" in absolute[0]
    assert all("the ship" in c.lower() for c in one if c not in absolute)  # 4 count captions: "... the ship ..."
    # two ships in the upper left: one absolute caption for both, one relative caption
    two = detection_captions([((5, 5, 20, 20), "ship"), ((25, 25, 40, 40), "ship")], 100, 100, names, "two")
    assert sum("2 ships" in c and "upper left" in c for c in two) == 1
    assert sum("the ship in the upper left" in c for c in two) == 1
    empty = detection_captions([], 100, 100, names, "none", seed=0)
    assert len(set(empty)) == 5 and all("aircraft or ships" in c for c in empty)


def test_fluency_hook_off_by_default_and_validated():
    captions = ["a", "b"]
    assert apply_fluency_check(captions, None, "x.png") == captions
    assert apply_fluency_check(captions, lambda c: [s.upper() for s in c], "x.png") == ["A", "B"]
    with pytest.raises(DatasetBuildError, match="x.png: fluency check returned"):
        apply_fluency_check(captions, lambda c: c[:1], "x.png")
    with pytest.raises(DatasetBuildError, match="x.png: fluency check returned an empty caption"):
        apply_fluency_check(captions, lambda c: ["ok", " "], "x.png")
