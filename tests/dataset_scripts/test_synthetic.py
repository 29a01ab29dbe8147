"""Synthetic SAR chips: determinism, Gamma speckle statistics, boxes, captions, the in-memory DatasetDict API."""

import datasets
import numpy as np
import pytest
from scipy.stats import gamma  # installed with scikit-learn

from dataset_scripts import SYNTHETIC_CLASSES, SyntheticSarGenerator, build_dataset, synthetic_dataset
from dataset_scripts.captions import load_templates
from dataset_scripts.synthetic import DB_RANGE


def test_deterministic_by_seed():
    a, b = SyntheticSarGenerator(64, seed=3).chip(7), SyntheticSarGenerator(64, seed=3).chip(7)
    np.testing.assert_array_equal(a.image, b.image)
    assert a.captions == b.captions and a.label == b.label
    c = SyntheticSarGenerator(64, seed=4).chip(7)
    assert not np.array_equal(a.image, c.image)
    assert not np.array_equal(a.image, SyntheticSarGenerator(64, seed=3).chip(7, stream=1).image)  # test stream


@pytest.mark.parametrize("looks", [1.0, 3.0, 4.5])
def test_speckle_intensity_matches_gamma_with_l_looks(looks):
    """Over a homogeneous region of reflectivity R, intensity ~ R * Gamma(L, 1/L): mean R, variance R^2 / L."""
    generator = SyntheticSarGenerator(128, looks=looks, seed=1)
    reflectivity_db = -10.0
    image = generator.speckled_image(np.full((256, 256), reflectivity_db, np.float32), np.random.default_rng(0))
    low, high = DB_RANGE
    intensity = 10 ** ((low + image.astype(np.float64) * (high - low) / 255) / 10)  # the 8-bit value's meaning
    reflectivity = 10 ** (reflectivity_db / 10)
    assert intensity.mean() == pytest.approx(reflectivity, rel=0.03)
    assert intensity.var() == pytest.approx(reflectivity**2 / looks, rel=0.08)
    # and not some other distribution with that mean: the median of Gamma(L, 1/L) is below its mean
    assert np.median(intensity) / reflectivity == pytest.approx(gamma.median(looks, scale=1 / looks), rel=0.04)


def test_chips_are_8bit_balanced_and_captioned():
    generator = SyntheticSarGenerator(96, seed=0)
    templates = load_templates()
    for index in range(10):
        chip = generator.chip(index)
        assert chip.image.shape == (96, 96) and chip.image.dtype == np.uint8
        assert chip.label == index % 5
        phrase = generator.names[chip.class_name].singular
        allowed = {t.format_map({"class": phrase}) for t in templates.classification}
        assert len(chip.captions) == 5 and set(chip.captions) <= allowed
        assert len(chip.boxes) == 1
    # a target is brighter than its clutter, and a ship sits on dark sea
    ship = generator.chip(1)
    (x0, y0, x1, y1), _ = ship.boxes[0]
    inside = ship.image[int(y0):int(y1), int(x0):int(x1)]
    assert ship.clutter == "sea" and inside.max() > np.median(ship.image) + 60


def test_boxes_inside_image_and_detection_captions():
    generator = SyntheticSarGenerator(128, seed=0, with_boxes=True)
    counts = set()
    for index in range(40):
        chip = generator.chip(index)
        assert 1 <= len(chip.boxes) <= 3
        counts.add(len(chip.boxes))
        for (x0, y0, x1, y1), cls in chip.boxes:
            assert cls == chip.class_name
            assert 0 < x0 < x1 < 128 and 0 < y0 < y1 < 128
        assert len(chip.captions) == 5
        assert any(" located in the " in c or " can be seen in the " in c or " of this SAR image contains " in c
                   for c in chip.captions)
    assert counts == {1, 2, 3}


def test_synthetic_dataset_api():
    ds = synthetic_dataset(num_train=12, num_test=4, image_size=64, seed=5)
    assert isinstance(ds, datasets.DatasetDict) and list(ds) == ["train", "test"]
    assert (ds["train"].num_rows, ds["test"].num_rows) == (12, 4)
    features = ds["train"].features
    assert isinstance(features["image"], datasets.Image)
    assert features["label"].names == list(SYNTHETIC_CLASSES)
    assert {"captions", "source", "split"} <= set(features)
    row = ds["test"][2]
    assert row["image"].mode == "L" and row["image"].size == (64, 64)
    assert row["source"] == "synthetic" and row["split"] == "test" and len(row["captions"]) == 5
    np.testing.assert_array_equal(np.asarray(row["image"]), SyntheticSarGenerator(64, seed=5).chip(2, stream=1).image)
    again = synthetic_dataset(num_train=12, num_test=4, image_size=64, seed=5)
    assert again["train"]["captions"] == ds["train"]["captions"]
    assert ds["train"].features["label"].int2str(ds["train"][3]["label"]) == SYNTHETIC_CLASSES[3]


def test_image_size_is_checked():
    with pytest.raises(ValueError, match="image_size"):
        SyntheticSarGenerator(16)


def test_built_synthetic_parquet_equals_the_in_memory_set(tmp_path, load_built):
    build_dataset("synthetic", None, tmp_path / "out", num_train=6, num_test=3, image_size=48, seed=2)
    built, memory = load_built(tmp_path / "out"), synthetic_dataset(num_train=6, num_test=3, image_size=48, seed=2)
    assert built["train"].features == memory["train"].features
    for split in ("train", "test"):
        for a, b in zip(built[split], memory[split]):
            assert a["captions"] == b["captions"] and a["label"] == b["label"] and a["clutter"] == b["clutter"]
            np.testing.assert_array_equal(np.asarray(a["image"]), np.asarray(b["image"]))
