"""Splits: the deterministic train/test assignment of builders for sources that ship no split (OpenSARShip,
detection samples, tables), and the held-out evaluation split every trainer takes from data with a train split only
(SARCLIP `fit` and `eval`, KnowLIP `finetune`), with the warning when evaluation images are also training images."""

from __future__ import annotations

import hashlib
import re
from pathlib import Path

import datasets


def hash_split(group_key: str, seed: int, test_fraction: float) -> str:
    """"test" for a stable ``test_fraction`` of group keys, else "train".

    The decision depends only on (seed, group key), so it does not change when items are added or reordered, and
    every item of a group (e.g. the VV and VH chips of one ship) lands in the same split.
    """
    digest = hashlib.sha1(f"{seed}/{group_key}".encode()).digest()
    return "test" if int.from_bytes(digest[:8], "big") / 2**64 < test_fraction else "train"


GROUP_COLUMNS = ("group_id", "ship_id", "scene_id")
# a polarisation suffix of a file name (`..._x1456_y5194_vv.tif` and `..._vh.tif` are one ship)
POLARISATION_SUFFIX = re.compile(r"[_-](vv|vh|hh|hv)$", re.IGNORECASE)


def with_held_out_split(dataset: datasets.DatasetDict, train_split: str, eval_split: str, fraction: float, seed: int,
                        source: str) -> datasets.DatasetDict:
    """Split `fraction` of `train_split` off as `eval_split`: seeded (the same data and seed give the same split,
    for `fit` and `eval` alike), and reported on stdout.

    Examples that belong together stay on one side (`held_out_groups`: a group column, or image files whose names
    differ only by their polarisation); otherwise the split is stratified by `label` when there is one."""
    train = dataset[train_split]
    grouping = held_out_groups(train)
    if grouping is not None:
        by, keys = grouping
        test = [i for i, key in enumerate(keys) if hash_split(key, seed, fraction) == "test"]
        if not test or len(test) == len(keys):
            raise ValueError(f"{source}: {len(set(keys))} groups ({by}) are too few to hold out an evaluation split; "
                             f"add a {eval_split!r} split or set eval_split: null")
        held = set(test)
        parts = {"train": train.select([i for i in range(len(train)) if i not in held]), "test": train.select(test)}
        how = f", whole groups by {by}"
    else:
        stratify = "label" if isinstance(train.features.get("label"), datasets.ClassLabel) else None
        per_split = len(set(train["label"])) if stratify else 1  # stratified: at least one example per class each side
        size = max(round(fraction * len(train)), per_split)
        if len(train) - size < per_split:
            raise ValueError(f"{source}: {len(train)} {train_split!r} examples are too few to hold out an evaluation "
                             f"split; add a {eval_split!r} split or set eval_split: null")
        parts = train.train_test_split(test_size=size, seed=seed, stratify_by_column=stratify)
        how = ", stratified by label" if stratify else ""
    print(f"{source}: no {eval_split!r} split; held out {len(parts['test'])} of {len(train)} {train_split!r} "
          f"examples as {eval_split!r} (seed {seed}, fraction {fraction}{how})")
    return datasets.DatasetDict({**dataset, train_split: parts["train"], eval_split: parts["test"]})


def held_out_groups(split: datasets.Dataset) -> tuple[str, list[str]] | None:
    """(what groups the examples, one key per example) when some examples belong together, else None."""
    for column in GROUP_COLUMNS:
        if column in split.column_names:
            return column, [str(value) for value in split[column]]
    if split.features.get("image") == datasets.Value("string"):  # image files (folders, label tables)
        keys = [str(Path(path).with_name(POLARISATION_SUFFIX.sub("", Path(path).stem))) for path in split["image"]]
        if len(set(keys)) < len(keys):
            return "file name without its polarisation suffix", keys
    return None


SHARED_IMAGE_CHECK_ROWS = 200_000  # images are hashed (file bytes, not decoded) up to this many rows per split


def warn_shared_images(train: datasets.Dataset, test: datasets.Dataset, train_name: str, test_name: str,
                       source: str) -> int:
    """Print a warning when images of `test` are also in `train` (the same file, or the same bytes): evaluation on
    them is not held out. Returns how many test images are shared."""
    def digest(data: bytes | None, path: str | None) -> str | None:
        if data is None and path:
            try:
                data = Path(path).read_bytes()
            except OSError:  # unreadable files are reported where the image is read
                return None
        return hashlib.sha1(data).hexdigest() if data else None

    def keys(split: datasets.Dataset) -> list:
        if len(split) > SHARED_IMAGE_CHECK_ROWS:
            return []
        if split.features.get("image") == datasets.Value("string"):
            return [digest(None, path) for path in split["image"]]
        if not isinstance(split.features.get("image"), datasets.Image):
            return []
        return [digest(item.get("bytes"), item.get("path"))
                for item in split.cast_column("image", datasets.Image(decode=False))["image"]]

    seen = set(keys(train)) - {None}
    shared = [i for i, key in enumerate(keys(test)) if key in seen]
    if shared:
        print(f"warning: {source}: {len(shared)} of {len(test)} {test_name!r} images are also in {train_name!r} (the "
              f"same file or bytes; e.g. {test_name} row {shared[0]}): evaluation on them is not held out")
    return len(shared)


# columns that name what belongs together (e.g. the VV and VH chips of one ship): a held-out split keeps each group
# on one side
