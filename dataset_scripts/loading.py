"""`load_image_text_data`: the one place where a `--data` value becomes a `datasets.DatasetDict`, for both model
families' training and evaluation.

`data` is one of:
- "synthetic": the caller's built-in synthetic set (`synthetic`, a function returning a `DatasetDict`; each family
  has its own: SARCLIP captions, SAR-KnowLIP sub-texts);
- a caption table (`.csv`, `.tsv`, `.json`, `.jsonl`): read by `readers.caption_table.read_caption_table` (open_clip
  `filepath`/`title`, SARCLIP `filename`/`caption`, SARLANG and COCO caption files; rows of one image are grouped),
  as a single `train` split with `image` and `captions` columns; a missing image file or an empty caption is an
  error naming the table and the row;
- anything else: `datasets.load_dataset(data)`, i.e. a folder this package built (parquet shards + card) or a Hub
  dataset id.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import datasets

from .errors import DatasetBuildError
from .readers.caption_table import read_caption_table
from .report import BuildReport

CAPTION_TABLE_SUFFIXES = (".csv", ".tsv", ".json", ".jsonl")


def load_image_text_data(
    data: str,
    synthetic: Callable[[], datasets.DatasetDict] | None = None,
    image_key: str | None = None,
    caption_key: str | None = None,
) -> datasets.DatasetDict:
    """`data` (see the module docstring) -> `DatasetDict`. `image_key` / `caption_key` name a caption table's
    columns (default: detected from the header)."""
    if data == "synthetic":
        if synthetic is None:
            raise ValueError("data 'synthetic' needs the caller's synthetic-set builder")
        return synthetic()
    path = Path(data)
    if path.suffix.lower() in CAPTION_TABLE_SUFFIXES:
        return caption_table_dataset(path, image_key, caption_key)
    if path.is_file():
        raise DatasetBuildError(path, f"not a caption table (expected one of {CAPTION_TABLE_SUFFIXES}) nor a "
                                      "dataset folder")
    return datasets.load_dataset(data)


def caption_table_dataset(path: Path, image_key: str | None = None,
                          caption_key: str | None = None) -> datasets.DatasetDict:
    """A caption table as a `train` split (`image` feature, `captions` list); strict: nothing is skipped silently."""
    if not path.is_file():
        raise DatasetBuildError(path, "no such caption table")
    items = read_caption_table(path, BuildReport(str(path), strict=True), image_key, caption_key)
    if absent := [str(item.image_path) for item in items if not item.image_path.is_file()]:
        raise DatasetBuildError(path, f"{len(absent)} image file(s) not found, e.g. {absent[:3]}")
    table = datasets.Dataset.from_dict({"image": [str(item.image_path) for item in items],
                                        "captions": [item.captions for item in items]})
    return datasets.DatasetDict({"train": table.cast_column("image", datasets.Image())})


__all__ = ["CAPTION_TABLE_SUFFIXES", "caption_table_dataset", "load_image_text_data"]
