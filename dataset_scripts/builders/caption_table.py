"""Image-caption tables (open_clip CSV/TSV, SARCLIP lists, SARLANG-style caption files) -> image + captions.

8-bit images go into an ``Image()`` column; anything else (float dB, 16-bit, complex, 2-band TIFF) into the array
columns of ``features.array_features``. The first image decides which, and every image must then be of the same kind.
"""

from __future__ import annotations

import dataclasses
import functools
import os
import re
from pathlib import Path

import datasets
import numpy as np

from ..errors import DatasetBuildError
from ..features import CAPTIONS, array_columns, array_features
from ..readers import ImageFile, TiffRaster, read_caption_table, read_image_file, read_tiff
from ..splits import hash_split
from .base import Item, SarBuilder, SarBuilderConfig

TABLE_SUFFIXES = (".csv", ".tsv", ".txt", ".json", ".jsonl")
SPLIT_IN_NAME = re.compile(r"(train|val|test)", re.IGNORECASE)
SPLIT_NAMES = {"train": "train", "val": "validation", "test": "test"}
TIFF_SUFFIXES = (".tif", ".tiff")


@dataclasses.dataclass
class CaptionTableConfig(SarBuilderConfig):
    """image_key/caption_key/separator: table columns (auto-detected when None). image_root: folder that relative
    image paths start from (default: the table's folder). bands/unit: describe non-8-bit rasters (defaults: 2-band
    float = ["VV", "VH"] in dB as in SARCLIP's reader, other float = dB, integers = "dn", complex = "complex")."""

    image_key: str | None = None
    caption_key: str | None = None
    separator: str | None = None
    image_root: str | None = None
    bands: list[str] | None = None
    unit: str | None = None

    def __post_init__(self):
        super().__post_init__()
        if self.separator is not None and len(self.separator) != 1:
            raise ValueError(f"separator (--separator) must be one character, got {self.separator!r}")
        if self.bands is not None and not (self.bands and all(band.strip() for band in self.bands)):
            raise ValueError(f"bands (--bands) must be non-empty names, got {self.bands!r}")


def _read_raster(path: Path) -> ImageFile | TiffRaster:
    """An ImageFile for 8-bit images PIL decodes fully, else a TiffRaster."""
    if path.suffix.lower() in TIFF_SUFFIXES:
        raster = read_tiff(path)
        if raster.array.dtype != np.uint8 or raster.num_bands not in (1, 3):
            return raster
    return read_image_file(path)


def _array_dtype(raster: ImageFile | TiffRaster) -> str | None:
    """None for 8-bit images (Image column); else the array column dtype (float and complex -> float32)."""
    if isinstance(raster, ImageFile):
        return None
    return "float32" if raster.array.dtype.kind in "fc" else str(raster.array.dtype)


class CaptionTableBuilder(SarBuilder):
    BUILDER_CONFIG_CLASS = CaptionTableConfig
    SOURCE = "csv"
    TASK = "caption"
    DESCRIPTION = ("SAR images with captions from an image-caption table (open_clip CSV/TSV `filepath`/`title`, "
                   "SARCLIP `filename`/`caption`, SARLANG-style caption CSV/JSON). Rows of one image are grouped.")

    def _list_items(self) -> list[Item]:
        source = Path(self.config.data_dir)
        if not source.exists():
            raise DatasetBuildError(source, "caption table or folder does not exist")
        tables = [source] if source.is_file() else sorted(p for p in source.iterdir() if p.suffix in TABLE_SUFFIXES)
        if not tables:
            raise DatasetBuildError(source, "no caption table (.csv, .tsv, .json, .jsonl)")
        items = []
        for table in tables:
            match = SPLIT_IN_NAME.search(table.stem) if len(tables) > 1 else None
            if len(tables) > 1 and match is None:
                raise DatasetBuildError(table, "several tables: each name must contain train, val or test")
            rows = read_caption_table(table, self.report, self.config.image_key, self.config.caption_key,
                                      self.config.separator, self.config.image_root, self.allowed_root)
            for row in rows:
                key = f"{table.name}/{os.path.relpath(row.image_path, table.parent)}"
                split = (SPLIT_NAMES[match[1].lower()] if match
                         else hash_split(key, self.config.seed, self.config.test_fraction))
                items.append(Item(split, key, row))
        return items

    @property
    def allowed_root(self) -> Path | None:
        """``image_root`` when given, else the source folder (None: anywhere, with ``allow_outside_source``)."""
        root = super().allowed_root
        return Path(self.config.image_root) if root is not None and self.config.image_root else root

    @functools.cached_property
    def array_dtype(self) -> str | None:
        """None when images are 8-bit (Image column), else the array column dtype, from the first readable image
        (unreadable ones are skipped and reported when the examples are generated)."""
        for item in self.items:
            try:
                return _array_dtype(_read_raster(item.value.image_path))
            except DatasetBuildError:
                continue
        raise DatasetBuildError(self.config.data_dir, "none of the table's images can be read")

    def _bands_and_unit(self, raster: TiffRaster) -> tuple[list[str], str]:
        array = raster.array
        count = array.shape[2]
        if np.iscomplexobj(array):
            default_bands, unit = [f"band_{i + 1}" for i in range(count)], "complex"
        elif array.dtype.kind == "f":
            default_bands = ["VV", "VH"] if count == 2 else [f"band_{i + 1}" for i in range(count)]
            unit = "dB"
        else:
            default_bands, unit = [f"band_{i + 1}" for i in range(count)], "dn"
        bands = self.config.bands or default_bands
        if len(bands) != count:
            raise DatasetBuildError(raster.path, f"{count} bands but band names {bands}")
        if unit == "complex":
            bands = [f"{band}.{part}" for band in bands for part in ("real", "imag")]
        return bands, self.config.unit or unit

    def _features(self) -> datasets.Features:
        common = {"captions": CAPTIONS, "source": datasets.Value("string"), "split": datasets.Value("string"),
                  "file": datasets.Value("string")}
        if self.array_dtype is None:
            return datasets.Features({"image": datasets.Image(), **common})
        return datasets.Features({**array_features(self.array_dtype), **common})

    def _example(self, item: Item) -> dict:
        row = item.value
        raster = _read_raster(row.image_path)
        if _array_dtype(raster) != self.array_dtype:
            expected = "8-bit images" if self.array_dtype is None else f"{self.array_dtype} rasters"
            raise DatasetBuildError(row.image_path, f"the table's first image made this a dataset of {expected}; "
                                    f"this file is {raster.array.dtype} with shape {raster.array.shape}")
        if isinstance(raster, TiffRaster):
            self.check_finite(row.image_path, raster.array)
            pixels = array_columns(raster.array, *self._bands_and_unit(raster))
        else:
            pixels = {"image": {"bytes": raster.data, "path": row.image_path.name}}
        return {**pixels, "captions": row.captions, "source": self.SOURCE, "split": item.split, "file": item.key}
