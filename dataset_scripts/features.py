"""datasets Features shared by the builders: 8-bit images as Image(), other rasters as flat arrays + shape."""

from __future__ import annotations

import datasets
import numpy as np

CAPTIONS = datasets.List(datasets.Value("string"))


def label_columns(class_names: list[str]) -> dict:
    """The columns every classification row has: 5 captions, label, source, split."""
    string = datasets.Value("string")
    return {"captions": CAPTIONS, "label": datasets.ClassLabel(names=class_names), "source": string, "split": string}


def classification_features(class_names: list[str], extra: dict | None = None) -> datasets.Features:
    """image (8-bit), 5 captions, label, source, split, then source-specific metadata ``extra``."""
    return datasets.Features({"image": datasets.Image(), **label_columns(class_names), **(extra or {})})


def boxes_feature(categories: list[str]) -> datasets.List:
    """Boxes as pixel (x0, y0, x1, y1) with a category label."""
    return datasets.List({"bbox": datasets.List(datasets.Value("float32"), length=4),
                          "category": datasets.ClassLabel(names=categories)})


def array_features(dtype: str, extra: dict | None = None) -> dict:
    """Raster values that ``Image()`` cannot hold (float dB, 16-bit, complex, more than 3 bands).

    ``datasets.Array3D`` allows only its first dimension to vary and nested lists read ~100x slower, so the
    values are one flat list (C order of an (H, W, bands) array) with its ``shape``; ``bands`` names the bands and
    ``unit`` says what the values are ("dB", "amplitude", "dn" for digital numbers, "complex" for real/imag pairs).
    Use ``array_from_example`` to get the numpy array back.
    """
    return {
        "array": datasets.List(datasets.Value(dtype)),
        "shape": datasets.List(datasets.Value("int32"), length=3),
        "bands": datasets.List(datasets.Value("string")),
        "unit": datasets.Value("string"),
        **(extra or {}),
    }


def array_columns(array: np.ndarray, bands: list[str], unit: str) -> dict:
    """Row values for ``array_features`` from an (H, W, bands) array (complex -> real/imag float32 bands)."""
    if np.iscomplexobj(array):
        array = np.stack([array.real, array.imag], axis=-1).reshape(*array.shape[:2], -1).astype(np.float32)
    if array.shape[2] != len(bands):
        raise ValueError(f"{array.shape[2]} bands but names {bands}")
    return {"array": array.ravel(), "shape": list(array.shape), "bands": bands, "unit": unit}


def array_from_example(example: dict, column: str = "array") -> np.ndarray:
    """The (H, W, bands) numpy array of a row (any format: python lists or numpy); complex if unit is "complex"
    (`modeling_sarclip.sar_raster_sarclip.array_from_cell`, the one reader of this layout)."""
    from modeling_sarclip.sar_raster_sarclip import array_from_cell

    return array_from_cell(example, column)