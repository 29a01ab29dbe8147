"""Synthetic SCIO data: the project's synthetic SAR chips with 8 template sub-texts per image (for tests, the CLI's
`data: synthetic` and benchmarks; real SCIO data comes from the HCoT captioning pipeline)."""

from __future__ import annotations

import datasets

from dataset_scripts import SYNTHETIC_CLASSES, synthetic_dataset

FUNCTIONS = {"sea": "maritime transport", "land": "agriculture", "urban": "housing"}


def synthetic_subtexts(label: int, clutter: str, index: int) -> list[str]:
    """8 sub-texts (scene, function, terrain, target, layout, scattering, shadow, context) from simple templates;
    every third image gets a wrong target claim as its last sub-text (the kind of noise SCIO should find)."""
    target = SYNTHETIC_CLASSES[label].replace("_", " ")
    wrong = SYNTHETIC_CLASSES[(label + 2) % len(SYNTHETIC_CLASSES)].replace("_", " ")
    return [
        f"the scene background is {clutter}",
        f"the region is used for {FUNCTIONS[clutter]}",
        "the terrain is flat" if clutter != "urban" else "the terrain is built up",
        f"the target is a {target}",
        f"one {target} lies near the centre",
        f"the {target} gives bright scattering",
        f"a dark shadow falls below the {target}",
        f"a {wrong} is also visible" if index % 3 == 0 else f"the {target} stands alone",
    ]


def synthetic_scio_dataset(num_images: int, image_size: int, seed: int = 0) -> datasets.Dataset:
    """`num_images` synthetic SAR chips with an `image` column and a `subtexts` column (8 strings per image)."""
    chips = synthetic_dataset(num_train=num_images, num_test=0, image_size=image_size, seed=seed)["train"]
    texts = [synthetic_subtexts(label, clutter, i) for i, (label, clutter) in enumerate(zip(chips["label"],
                                                                                             chips["clutter"]))]
    return chips.select_columns(["image"]).add_column("subtexts", texts)


__all__ = ["FUNCTIONS", "synthetic_scio_dataset", "synthetic_subtexts"]
