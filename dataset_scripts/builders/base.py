"""Common machinery of the SAR builders: config, item listing, max_items subsets, skip reporting, fluency hook."""

from __future__ import annotations

import dataclasses
import functools
import random
from pathlib import Path
from typing import Any

import datasets
import numpy as np

from ..captions import ClassNameTable, FluencyCheck, apply_fluency_check, classification_captions
from ..errors import DatasetBuildError
from ..readers import read_image_file, source_root
from ..report import BuildReport


NAN_POLICIES = ("error", "report")


@dataclasses.dataclass
class SarBuilderConfig(datasets.BuilderConfig):
    """Options shared by all builders (``data_dir`` is the source folder or file).

    seed: caption draws and hash splits. max_items: keep a seeded random subset of at most this many items per
    split. strict: raise on the first bad item instead of skipping and reporting it. fluency_check: optional
    callable(list of captions) -> list of captions (an LLM pass), off by default. test_fraction: share of items
    (grouped, see each builder) put in "test" when the source has no split. class_names: extra
    class name -> caption words entries. class_section: section of class_names.yaml (detection and table sources).
    license: the card's license field (default: the builder's). allow_outside_source: read image files that
    annotation tables name outside the source folder (refused by default). nan_policy: float rasters holding NaN/Inf
    are bad items ("error", the default) or kept and flagged in the report ("report").
    Invalid values raise ValueError when the config is made, before any work.
    """

    seed: int = 0
    max_items: int | None = None
    strict: bool = False
    fluency_check: FluencyCheck | None = None
    test_fraction: float = 0.2
    class_names: dict | None = None
    class_section: str | None = None
    license: str | None = None
    allow_outside_source: bool = False
    nan_policy: str = "error"

    def __post_init__(self):
        super().__post_init__()
        if self.max_items is not None and self.max_items < 1:
            raise ValueError(f"max_items (--max-items) must be at least 1, got {self.max_items}")
        if not 0 <= self.test_fraction < 1:
            raise ValueError(f"test_fraction (--test-fraction) must be in [0, 1), got {self.test_fraction}")
        if self.nan_policy not in NAN_POLICIES:
            raise ValueError(f"nan_policy (--nan-policy) must be one of {NAN_POLICIES}, got {self.nan_policy!r}")
        if self.class_names is not None and not isinstance(self.class_names, dict):
            raise ValueError("class_names (--class-names) must map class names to caption words, got "
                             f"{type(self.class_names).__name__}")
        try:
            ClassNameTable(self.class_section or "common", extra=self.class_names)
        except (ValueError, KeyError, TypeError, AttributeError) as err:  # unknown section, malformed extra names
            raise ValueError("class_section / class_names (--class-section / --class-names; extra names map to "
                             f"caption words or {{name: ..., plural: ...}}): {type(err).__name__}: {err}") from None


@dataclasses.dataclass(frozen=True)
class Item:
    split: str
    key: str  # unique, stable (relative path); seeds the captions
    value: Any


class SarBuilder(datasets.GeneratorBasedBuilder):
    """Base of the builders. Subclasses set SOURCE/TASK/LICENSE/... and implement
    ``_list_items`` (cheap listing; may record ignored/skipped/repaired files), ``_features`` and ``_example``."""

    BUILDER_CONFIG_CLASS = SarBuilderConfig
    VERSION = datasets.Version("1.0.0")
    SOURCE = ""  # builder name, also the dataset name and the `source` column
    TASK = "classification"  # classification | detection | caption
    LICENSE = "other"
    DESCRIPTION = ""
    CITATION = ""
    CLASS_SECTION = "common"

    def __init__(self, **kwargs):
        kwargs.setdefault("dataset_name", self.SOURCE)
        super().__init__(**kwargs)

    # --- shared state (computed once; _info needs the item list for class names) ----------------------------------
    @functools.cached_property
    def report(self) -> BuildReport:
        return BuildReport(self.SOURCE, strict=self.config.strict)

    @functools.cached_property
    def items(self) -> list[Item]:
        items = self._list_items()
        if not items:
            raise DatasetBuildError(self.config.data_dir or self.SOURCE, "no items found:\n" + self.report.summary())
        return items

    @functools.cached_property
    def class_table(self) -> ClassNameTable:
        return ClassNameTable(self.config.class_section or self.CLASS_SECTION, extra=self.config.class_names)

    def caption_name(self, raw: str, where: str) -> str:
        """Caption words for a class; DatasetBuildError naming ``where`` for an unknown class."""
        try:
            return self.class_table[raw].singular
        except KeyError as err:
            raise DatasetBuildError(where, err.args[0]) from None

    def chip_example(self, path, class_name: str, item: Item, **columns) -> dict:
        """A classification chip's row: the file's bytes, SARCLIP-1M template captions of its class, label, source,
        split and file, plus the builder's own `columns`."""
        return {
            "image": {"bytes": read_image_file(path).data, "path": path.name},
            "captions": classification_captions(self.caption_name(class_name, str(path)), item.key, self.config.seed),
            "label": class_name,
            "source": self.SOURCE,
            "split": item.split,
            **columns,
            "file": item.key,
        }

    def check_finite(self, path, *arrays: np.ndarray) -> None:
        """NaN/Inf values in ``arrays`` (the file's rasters): with nan_policy "error" a DatasetBuildError naming the
        file and the count (the item is skipped and reported, or the build stops with ``strict``); with "report" the
        values are kept and the item is flagged in the report."""
        count = sum(int(np.count_nonzero(~np.isfinite(array))) for array in arrays)
        if count and self.config.nan_policy == "error":
            raise DatasetBuildError(path, f"{count} NaN/Inf values (nan_policy='report' / --nan-policy report keeps "
                                    "them and counts them in the report)")
        if count:
            self.report.flag(str(path), f"{count} NaN/Inf values kept (nan_policy='report')")

    def checked_class_names(self, pairs) -> list[str]:
        """Sorted names of (class, where found) pairs. A class without caption words is a configuration error:
        DatasetBuildError naming the first file where it occurs, before anything is built."""
        first: dict[str, str] = {}
        for name, where in pairs:
            first.setdefault(name, where)
        for name, where in first.items():
            self.caption_name(name, where)
        return sorted(first)

    @property
    def allowed_root(self) -> Path | None:
        """The folder that annotation files may name images in (None: anywhere, with ``allow_outside_source``)."""
        return None if self.config.allow_outside_source else source_root(self.config.data_dir)

    @property
    def license(self) -> str:
        return self.config.license or self.LICENSE

    # --- datasets.GeneratorBasedBuilder ----------------------------------------------------------------------------
    def _info(self) -> datasets.DatasetInfo:
        return datasets.DatasetInfo(description=self.DESCRIPTION, features=self._features(), citation=self.CITATION)

    def limited_items_by_split(self) -> dict[str, list[Item]]:
        """The items per split (train, validation, test, then others), after the ``max_items`` subset."""
        splits: dict[str, list[Item]] = {}
        for item in self.items:
            splits.setdefault(item.split, []).append(item)
        order = {"train": 0, "validation": 1, "test": 2}
        return {split: self._limit(split, items)
                for split, items in sorted(splits.items(), key=lambda kv: (order.get(kv[0], 3), kv[0]))}

    def _split_generators(self, dl_manager):
        return [datasets.SplitGenerator(name=split, gen_kwargs={"split": split, "items": items})
                for split, items in self.limited_items_by_split().items()]

    def _limit(self, split: str, items: list[Item]) -> list[Item]:
        limit = self.config.max_items
        if limit is None or len(items) <= limit:
            return items
        self.report.limit(split, limit, len(items))
        keep = sorted(random.Random(f"{self.config.seed}/max_items/{split}").sample(range(len(items)), limit))
        return [items[i] for i in keep]

    def _generate_examples(self, split: str, items: list[Item]):
        for item in items:
            try:
                example = self._example(item)
                example["captions"] = apply_fluency_check(example["captions"], self.config.fluency_check, item.key)
                if not example["captions"] or not all(caption.strip() for caption in example["captions"]):
                    raise DatasetBuildError(item.key, f"empty caption in {example['captions']!r}")
            except DatasetBuildError as err:
                self.report.skip(err.path, err.problem)  # raises in strict mode
                continue
            self.report.add_example(split, example.get("dataset", self.SOURCE), len(example["captions"]))
            yield item.key, example

    # --- per source ------------------------------------------------------------------------------------------------
    def _list_items(self) -> list[Item]:
        raise NotImplementedError

    def _features(self) -> datasets.Features:
        raise NotImplementedError

    def _example(self, item: Item) -> dict:
        raise NotImplementedError
