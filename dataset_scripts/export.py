"""The one writer of dataset folders: Hub-ready ``data/<split>-NNNNN-of-NNNNN.parquet`` shards + a README.md card,
written atomically, and their push to the Hub. Builders (``build_dataset``), the SAR-GEOVL caption pipeline and the
VQA sets all go through ``write_dataset_folder`` / ``replace_folder``.

Everything is written atomically (``sar_utils.atomic``): a failed or killed build never leaves a half-written
output nor destroys a good one. ``load_dataset(out_dir)`` reads the result. Images are embedded as bytes (``Dataset.to_parquet`` alone would store
only paths, see dataset_scripts/README.md).
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Mapping, Sequence
from pathlib import Path

import datasets
from datasets.exceptions import DatasetGenerationError
from datasets.table import embed_table_storage
from datasets.utils.py_utils import convert_file_size_to_int
from huggingface_hub import DatasetCard

from sar_utils.atomic import disk_full_error, reap_leftovers, replace_folder, staging_folder
from sar_utils.hub import push_folder
from .builders import BUILDERS, SarBuilder
from .captions import CAPTIONS_PER_IMAGE
from .cards import dataset_card
from .errors import DatasetBuildError
from .readers import source_root
from .report import BuildReport, without_local_paths

TASK_CATEGORIES = {
    "classification": ["zero-shot-image-classification", "image-classification", "image-to-text"],
    "detection": ["zero-shot-image-classification", "object-detection", "image-to-text"],
    "caption": ["zero-shot-image-classification", "image-to-text"],
    "mixed": ["zero-shot-image-classification", "image-to-text"],
}
CAPTION_RECIPE = {
    "classification": f"{CAPTIONS_PER_IMAGE} captions per image from 10 templates (5 general, 5 complex; "
                      "SARCLIP-1M section III-B), drawn without replacement, seeded by (seed, file).",
    "detection": f"{CAPTIONS_PER_IMAGE} captions per image (SARCLIP-1M section III-B): 2 with object types and "
                 "counts, up to 2 absolute-region captions (IoU with 4 quadrants and a centred half-size box), 1 "
                 "relative-direction caption between two targets; missing ones replaced by count captions.",
    "caption": "captions as given in the source table.",
    "mixed": "per component, as above.",
}


def write_parquet_splits(folder: Path, splits: Mapping[str, Sequence[datasets.Dataset]]) -> None:
    """Each split's shards as ``folder/data/<split>-NNNNN-of-NNNNN.parquet``, image files embedded as bytes."""
    (folder / "data").mkdir(parents=True, exist_ok=True)
    for split, shards in splits.items():
        for index, shard in enumerate(shards):
            shard = shard.with_format("arrow").map(embed_table_storage, batched=True).with_format(None)
            shard.to_parquet(str(folder / "data" / f"{split}-{index:05d}-of-{len(shards):05d}.parquet"))


def write_dataset_folder(
    out_dir: str | Path,
    splits: Mapping[str, Sequence[datasets.Dataset]],
    card: str | DatasetCard,
    files: Mapping[str, str] | None = None,
    keep_other_entries: bool = True,
) -> Path:
    """Write ``splits`` (shards per split), the card ``README.md`` and other text ``files`` (name -> content) as a
    dataset folder, atomically (see the module docstring); returns ``out_dir``."""
    with disk_full_error(out_dir):
        staging = staging_folder(out_dir)
        try:
            write_parquet_splits(staging, splits)
            (staging / "README.md").write_text(str(card), encoding="utf-8")
            for name, text in (files or {}).items():
                (staging / name).write_text(text, encoding="utf-8")
            replace_folder(staging, out_dir, keep_other_entries)
        finally:
            shutil.rmtree(staging, ignore_errors=True)
    return Path(out_dir)


def check_build(name: str, out_dir: Path, overwrite: bool, max_shard_size: str | int, options: dict) -> None:
    """Everything about a build that can be checked before any work: the builder options (its config validates
    them), the source, the shard size and an output that is a writable folder, empty unless ``overwrite``, and
    neither the source folder nor above it. Leftovers of killed builds of ``out_dir`` are reaped first."""
    if name not in BUILDERS:
        raise ValueError(f"unknown dataset {name!r}; choose from {sorted(BUILDERS)}")
    BUILDERS[name].BUILDER_CONFIG_CLASS(**options)
    source = options.get("data_dir")
    if source is None and name != "synthetic":
        raise ValueError(f"{name} needs a source (--source)")
    if source is not None and not Path(source).exists():
        raise DatasetBuildError(source, "the source does not exist")
    try:
        shard_bytes = 0 if isinstance(max_shard_size, bool) else convert_file_size_to_int(max_shard_size)
    except (ValueError, TypeError, AttributeError):
        shard_bytes = 0
    if shard_bytes < 1:
        raise ValueError(f"max_shard_size (--max-shard-size) must be a positive size such as 500MB, got "
                         f"{max_shard_size!r}")
    reap_leftovers(out_dir)
    if out_dir.exists() and not out_dir.is_dir():
        raise NotADirectoryError(f"{out_dir}: --out is a file, not a folder")
    if out_dir.exists() and any(out_dir.iterdir()) and not overwrite:
        raise FileExistsError(f"{out_dir} is not empty (pass overwrite=True / --overwrite)")
    out = Path(os.path.abspath(out_dir))
    root = Path(os.path.abspath(source_root(source))) if source is not None else None
    if root is not None and (out == root or out in root.parents):
        raise ValueError(f"{out_dir}: --out would replace the source folder {source}; choose another folder")
    parent = next(folder for folder in out.parents if folder.exists())
    if not parent.is_dir():
        raise NotADirectoryError(f"{out_dir}: {parent} is a file, not a folder")
    if not os.access(parent, os.W_OK | os.X_OK):
        raise PermissionError(f"{out_dir}: cannot write in {parent}; choose a writable --out")


def build_dataset(
    name: str, source: str | Path | None, out_dir: str | Path, overwrite: bool = False,
    max_shard_size: str | int = "500MB", **options,
) -> BuildReport:
    """Build dataset ``name`` (a key of ``BUILDERS``) from ``source`` into ``out_dir``; returns the BuildReport.

    ``options`` are builder config fields (seed, max_items, strict, fluency_check, test_fraction, ...), checked with
    the output before any work (``check_build``: ValueError, FileExistsError...). Bad input raises DatasetBuildError
    (at once for configuration problems such as an unknown class, on the first bad item with ``strict=True``);
    otherwise bad items are skipped and listed in the report and the card. A split whose items were all skipped is
    left out of the output (and noted in the report). With ``overwrite`` an existing output is replaced only once the
    new one is complete; a full disk is an ``OSError(ENOSPC)`` naming ``out_dir``, which is then untouched.
    """
    out = Path(out_dir)
    if source is not None:
        options["data_dir"] = str(source)
    check_build(name, out, overwrite, max_shard_size, options)
    with disk_full_error(out):
        staging = staging_folder(out)
        try:
            builder = BUILDERS[name](cache_dir=str(staging / ".cache"), **options)
            _prepare_in(staging, builder, source or name, max_shard_size)
            write_dataset_card(staging, builder, options)
            replace_folder(staging, out)
        finally:
            shutil.rmtree(staging, ignore_errors=True)
    return builder.report


def _prepare_in(staging: Path, builder: SarBuilder, source: str | Path, max_shard_size: str | int) -> None:
    """Generate the examples and put the parquet shards of the non-empty splits into ``staging/data``."""
    prepared = staging / ".prepared"
    try:
        builder.download_and_prepare(output_dir=str(prepared), file_format="parquet", max_shard_size=max_shard_size)
    except DatasetGenerationError as err:  # datasets wraps errors raised while generating examples
        if isinstance(err.__cause__, DatasetBuildError):
            raise err.__cause__ from None
        raise
    if builder.report.total == 0:
        raise DatasetBuildError(source, "every item was skipped:\n" + builder.report.summary())
    (staging / "data").mkdir()
    for split in list(builder.info.splits):
        if builder.report.counts[split] == 0:
            builder.report.drop_split(split)
            del builder.info.splits[split]
            continue
        shards = sorted(prepared.glob(f"{builder.dataset_name}-{split}.parquet")) or sorted(
            prepared.glob(f"{builder.dataset_name}-{split}-*-of-*.parquet"))
        for index, shard in enumerate(shards):
            os.replace(shard, staging / "data" / f"{split}-{index:05d}-of-{len(shards):05d}.parquet")
    for entry in staging.iterdir():  # the builder's cache, prepared files and lock files
        if entry.name != "data":
            shutil.rmtree(entry) if entry.is_dir() else entry.unlink()


def write_dataset_card(out_dir: Path, builder: SarBuilder, options: dict) -> None:
    """README.md with YAML (license, tags, task categories, size, ``configs`` data files, features and splits)."""
    features = "\n".join(f"- `{column}`: {feature!r}" for column, feature in builder.info.features.items())
    root = source_root(options["data_dir"]) if "data_dir" in options else None
    settings = without_local_paths(
        ", ".join(f"{key}={value!r}" for key, value in sorted(options.items()) if key != "data_dir"), root)
    body = f"""{builder.DESCRIPTION}

Built with `dataset_scripts` (`python -m dataset_scripts build {builder.SOURCE}`), settings: {settings or "defaults"}.

```python
from datasets import load_dataset
ds = load_dataset("<this folder or hub repo>")
```

## Captions

{CAPTION_RECIPE[builder.TASK]}

## Features

{features}

Array columns (non-8-bit rasters): `array` is flat, `shape` is (H, W, bands);
`dataset_scripts.array_from_example(row)` returns the numpy array; the trainers' `--data` reads them as images.

## Source and license

{builder.CITATION or "See the source's own documentation."}
License field: `{builder.license}`. Check the source data's terms before redistributing.

## Build report

{builder.report.to_markdown(root)}
"""
    card = dataset_card(f"SAR {builder.SOURCE} image-text pairs", body, TASK_CATEGORIES[builder.TASK],
                        tags=("image-text", "clip"), license=builder.license, rows=builder.report.total,
                        splits=list(builder.info.splits), info=builder.info)
    card.save(out_dir / "README.md")


def push_dataset_to_hub(out_dir: str | Path, repo_id: str, private: bool = False, token: str | None = None):
    """Upload a built folder (parquet shards + card) to a Hub dataset repo; returns the commit info."""
    return push_folder(out_dir, repo_id, repo_type="dataset", private=private, token=token,
                       commit_message="Upload SAR image-text dataset built with dataset_scripts")
