"""`load_image_text_data`: the one place where a `--data` value becomes a `datasets.DatasetDict`, for both model
families' training and evaluation.

`data` is one of:
- "synthetic": the caller's built-in synthetic set (`synthetic`, a function returning a `DatasetDict`; each family
  has its own: SARCLIP captions, SAR-KnowLIP sub-texts);
- an image folder of labelled chips, `<split>/<class>/<file>` or flat `<class>/<file>` (any raster the SAR image
  processor reads: 8-bit PNG/JPEG/BMP, 8/16-bit and float (dB, dual-pol) TIFF, complex SLC TIFF): `image` is the file
  path (the processor reads it; float and multi-band rasters keep their values) and `label` a `ClassLabel` of the
  class folder names, the same classes in every split;
- a table (`.csv`, `.tsv`, `.json`, `.jsonl`; rows read by `readers.caption_table.read_table_records`) of
  `image,label` rows (a label column: `label`, `class`, `class_name`, `category`), read like an image folder; or of
  `image,caption` rows, read by
  `readers.caption_table.read_caption_table` (open_clip `filepath`/`title`, SARCLIP `filename`/`caption`, SARLANG
  and COCO caption files; rows of one image are grouped) into `image` and `captions` columns;
- anything else: `datasets.load_dataset(data)`, i.e. a folder this package built (parquet shards + card) or a Hub
  dataset id; rasters stored as array columns (float dB, amplitude, 16-bit, complex) become one `image` cell per row
  (`with_raster_cells`) that the SAR image processor reads with their values.

A table or image folder names images inside its own folder: an absolute path, a `..` or a symlink that leads out of
it is refused (the builders' rule, `readers.paths.check_inside`) unless `allow_outside_data` (a trainer's
`--allow_outside_data`) says it is meant.

Bad input is a `DatasetBuildError` naming the file or value: a missing or unreadable image or one the processor would
refuse (NaN pixels, int16, 4 bands: checked up front with the training radiometry), a folder with fewer than
two classes, an empty class folder, an empty label or caption. Files that are not images (a README, hidden files) are
reported, never used silently. Labels become captions at training time (`train.sarclip.data`), through the
SARCLIP-1M templates and the class words of `dataset_scripts.captions.class_names.class_words`.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import datasets

from .errors import DatasetBuildError
from .readers.caption_table import IMAGE_KEYS, read_caption_table, read_table_records
from .readers.paths import DATA_OUTSIDE_HINT, check_inside
from .report import BuildReport

CAPTION_TABLE_SUFFIXES = (".csv", ".tsv", ".json", ".jsonl")
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff")
LABEL_KEYS = ("label", "class", "class_name", "category")
SPLIT_NAMES = ("train", "validation", "test")
_SPLIT_ALIASES = {"val": "validation", "valid": "validation", "eval": "test"}


def load_image_text_data(
    data: str,
    synthetic: Callable[[], datasets.DatasetDict] | None = None,
    image_key: str | None = None,
    caption_key: str | None = None,
    allow_outside_data: bool = False,
) -> datasets.DatasetDict:
    """`data` (see the module docstring) -> `DatasetDict`. `image_key` / `caption_key` name a caption table's
    columns (default: detected from the header). `allow_outside_data`: let a table or image folder name images
    outside its folder (see the module docstring)."""
    if data == "synthetic":
        if synthetic is None:
            raise ValueError("data 'synthetic' is the training commands' built-in set; this command needs it on disk: "
                             "python -m dataset_scripts build synthetic --out DIR, then give --data DIR")
        return synthetic()
    path = Path(data)
    if path.suffix.lower() in CAPTION_TABLE_SUFFIXES:
        if caption_key is None and path.is_file():
            records = read_table_records(path)
            label_key = next((key for key in LABEL_KEYS if records and key in records[0]), None)
            if label_key is not None:
                return label_table_dataset(path, records, label_key, image_key, allow_outside_data)
        return caption_table_dataset(path, image_key, caption_key, allow_outside_data)
    if path.is_dir() and is_image_folder(path):
        return image_folder_dataset(path, allow_outside_data)
    if path.is_file():
        raise DatasetBuildError(path, f"not a caption table (expected one of {CAPTION_TABLE_SUFFIXES}) nor a "
                                      "dataset folder")
    loaded = datasets.load_dataset(data)
    for split, rows in loaded.items():
        loaded[split] = with_raster_cells(rows)
        check_split_images(loaded[split], f"{data}: split {split!r}")
    return loaded


RASTER_CELL_COLUMNS = ("array", "shape", "bands", "unit")


def with_raster_cells(rows: datasets.Dataset) -> datasets.Dataset:
    """A split whose rasters are array columns (float dB, amplitude, 16-bit, complex: `features.array_features`, which
    `datasets.Image` cannot hold) gets them nested into one `image` cell per row, a mapping the SAR image processor
    reads as it reads a file (`modeling_sarclip.sar_raster_sarclip.array_from_cell`); training and evaluation then
    take the split like any other. One pass over the split, cached by `datasets`."""
    if "image" in rows.column_names or not {"array", "shape"} <= set(rows.column_names):
        return rows
    cell = [column for column in RASTER_CELL_COLUMNS if column in rows.column_names]
    features = datasets.Features({**{name: feature for name, feature in rows.features.items() if name not in cell},
                                  "image": {column: rows.features[column] for column in cell}})
    return rows.map(lambda batch: {"image": [dict(zip(cell, values)) for values in zip(*(batch[c] for c in cell))]},
                    batched=True, remove_columns=cell, features=features, desc="raster cells")


def caption_table_dataset(path: Path, image_key: str | None = None, caption_key: str | None = None,
                          allow_outside_data: bool = False) -> datasets.DatasetDict:
    """A caption table as a `train` split (`image` feature, `captions` list); strict: nothing is skipped silently."""
    if not path.is_file():
        raise DatasetBuildError(path, "no such caption table")
    items = read_caption_table(path, BuildReport(str(path), strict=True), image_key, caption_key)
    for item in items:
        _check_inside(item.image_path, path.parent, path, f"image {str(item.image_path)!r}", allow_outside_data)
    if absent := [str(item.image_path) for item in items if not item.image_path.is_file()]:
        raise DatasetBuildError(path, f"{len(absent)} image file(s) not found, e.g. {absent[:3]}")
    for item in items:
        check_readable(item.image_path)
    table = datasets.Dataset.from_dict({"image": [str(item.image_path) for item in items],
                                        "captions": [item.captions for item in items]})
    return datasets.DatasetDict({"train": table.cast_column("image", datasets.Image())})


def is_image_folder(root: Path) -> bool:
    """A folder of class folders (or of split folders of class folders) holding images, not a built dataset."""
    if (root / "README.md").is_file() or (root / "dataset_dict.json").is_file() or any(root.glob("data/*.parquet")):
        return False
    return any(p.suffix.lower() in IMAGE_SUFFIXES for p in root.glob("*/*")) or any(
        p.suffix.lower() in IMAGE_SUFFIXES for p in root.glob("*/*/*"))


def image_folder_dataset(root: Path, allow_outside_data: bool = False) -> datasets.DatasetDict:
    """`<split>/<class>/<file>` or `<class>/<file>` -> `DatasetDict` with `image` (path) and `label` columns; a
    symlinked class folder or file that leads outside `root` is an error unless `allow_outside_data`."""
    subfolders = sorted(p for p in root.iterdir() if p.is_dir() and not p.name.startswith("."))
    split_folders = {_SPLIT_ALIASES.get(p.name.lower(), p.name.lower()): p for p in subfolders}
    if subfolders and set(split_folders) <= set(SPLIT_NAMES):
        layout = {split: _class_files(folder) for split, folder in split_folders.items()}
    else:
        layout = {"train": _class_files(root)}
    for files in layout.values():
        for paths in files.values():
            for file in paths:
                _check_inside(file, root, file, "image", allow_outside_data)
    classes = sorted({name for files in layout.values() for name in files})
    if len(classes) < 2:
        raise DatasetBuildError(root, f"an image folder needs at least 2 class folders, found {classes or 'none'}")
    rows = {split: [(str(path), name) for name, paths in files.items() for path in paths]
            for split, files in layout.items()}
    return _labelled_splits(rows, classes)


def _class_files(folder: Path) -> dict[str, list[Path]]:
    files = {}
    for class_dir in sorted(p for p in folder.iterdir() if p.is_dir() and not p.name.startswith(".")):
        entries = sorted(p for p in class_dir.iterdir() if not p.name.startswith("."))
        images = [p for p in entries if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES]
        if others := [p.name for p in entries if p not in images]:
            print(f"{class_dir}: ignoring {len(others)} non-image entries, e.g. {others[:3]}")
        if not images:
            raise DatasetBuildError(class_dir, f"class folder holds no image ({', '.join(IMAGE_SUFFIXES)}); remove "
                                               "it or add images")
        files[class_dir.name] = images
    for path in folder.iterdir():
        if path.is_file() and path.suffix.lower() in IMAGE_SUFFIXES:
            raise DatasetBuildError(path, "image outside a class folder: put each image in a folder named after "
                                          "its class")
    return files


def _labelled_splits(rows: dict[str, list[tuple[str, str]]], classes: list[str]) -> datasets.DatasetDict:
    features = datasets.Features({"image": datasets.Value("string"), "label": datasets.ClassLabel(names=classes)})
    for split_rows in rows.values():
        for path, _ in split_rows:
            check_readable(path)
    return datasets.DatasetDict({
        split: datasets.Dataset.from_dict({"image": [p for p, _ in split_rows],
                                           "label": [classes.index(c) for _, c in split_rows]}, features=features)
        for split, split_rows in rows.items()
    })


def check_readable(path: str | Path) -> None:
    """Read the image and apply the SARCLIP radiometry to it, as training will: an unreadable image, or one the
    processor refuses (NaN/inf pixels, an unsupported pixel type such as int16, 4 bands, 3-band float), is an error
    naming it before any training, not when its batch is built (or, in a held-out split, after training)."""
    from modeling_sarclip.radiometry_sarclip import sarclip_unit_planes
    from modeling_sarclip.sar_raster_sarclip import SarRasterError, read_sar_raster

    try:
        sarclip_unit_planes(read_sar_raster(path, metadata=False).array, str(path))
    except SarRasterError as err:
        raise DatasetBuildError(path, f"unusable image: {err.problem}") from err


def _check_inside(file: Path, root: Path, where: Path, what: str, allow_outside_data: bool) -> None:
    check_inside(file, None if allow_outside_data else root, where, what, DATA_OUTSIDE_HINT, "data folder")


def check_split_images(rows: datasets.Dataset, where: str) -> None:
    """Every image of a loaded split (`datasets.Image` cells or raster cells), decoded and put through the SARCLIP
    radiometry as training will: a bad one (NaN/inf pixels, 4 bands, an unsupported type) is an error naming
    `where`, the row and the file name stored with it, before any training (not when its batch is built or, in an
    evaluation split, after training). It costs one decoding pass (MSTAR's 2746 train chips: 0.4 s)."""
    feature = rows.features.get("image")
    cells = isinstance(feature, dict) and "array" in feature  # `with_raster_cells`
    if not (cells or isinstance(feature, datasets.Image)):
        return
    from modeling_sarclip.image_processing_sarclip import SarclipImageProcessor
    from modeling_sarclip.radiometry_sarclip import sarclip_unit_planes
    from modeling_sarclip.sar_raster_sarclip import SarRasterError

    processor = SarclipImageProcessor()
    stored = rows.select_columns(["image"])
    if not cells:
        stored = stored.cast_column("image", datasets.Image(decode=False))
    for row, example in enumerate(stored):
        try:
            image = example["image"] if cells else feature.decode_example(example["image"])
            sarclip_unit_planes(processor.load(image, "image"))
        except (SarRasterError, OSError) as err:  # OSError: PIL cannot decode the bytes
            name = f" ({example['image']['path']})" if example["image"].get("path") else ""
            problem = err.problem if isinstance(err, SarRasterError) else f"cannot decode it ({err})"
            raise DatasetBuildError(where, f"row {row}{name}: unusable image: {problem}; fix or remove it") from err


def _cell(record: dict, key: str, path: Path, line: int) -> str:
    """A table cell as text: strings stripped, numbers (JSON labels such as 3) as their text; lists or objects are
    an error that names the row."""
    value = record.get(key)
    if value is None:
        return ""
    if isinstance(value, (str, int, float)) and not isinstance(value, bool):
        return str(value).strip()
    raise DatasetBuildError(path, f"row {line}: column {key!r} holds {type(value).__name__} {value!r}; give a text "
                                  "or a number")


def label_table_dataset(path: Path, records: list[dict], label_key: str, image_key: str | None = None,
                        allow_outside_data: bool = False) -> datasets.DatasetDict:
    """The `records` of a table of `image,label` rows (CSV/TSV/JSON/JSONL; optional `split` column:
    train/validation/test, default train); relative image paths resolve against the table's folder, and must stay
    in it unless `allow_outside_data`."""
    if not records:
        raise DatasetBuildError(path, "the table has no rows")
    image_key = image_key or next((k for k in IMAGE_KEYS if k in records[0]), None)
    if image_key is None or image_key not in records[0]:
        raise DatasetBuildError(path, f"no image column (one of {IMAGE_KEYS}); columns: {list(records[0])}")
    rows: dict[str, list[tuple[str, str]]] = {}
    for line, record in enumerate(records, start=2):
        image, label = _cell(record, image_key, path, line), _cell(record, label_key, path, line)
        split = (_cell(record, "split", path, line) or "train").lower()
        split = _SPLIT_ALIASES.get(split, split)
        if not image or not label:
            raise DatasetBuildError(path, f"row {line}: empty {'image path' if not image else 'label'}")
        if split not in SPLIT_NAMES:
            raise DatasetBuildError(path, f"row {line}: unknown split {split!r} (use one of {SPLIT_NAMES})")
        file = Path(image) if Path(image).is_absolute() else path.parent / image
        if not file.is_file():
            raise DatasetBuildError(path, f"row {line}: image file {image} not found")
        _check_inside(file, path.parent, path, f"row {line}: image {image!r}", allow_outside_data)
        rows.setdefault(split, []).append((str(file), label))
    classes = sorted({label for split_rows in rows.values() for _, label in split_rows})
    if len(classes) < 2:
        raise DatasetBuildError(path, f"the label column {label_key!r} needs at least 2 classes, found {classes}")
    return _labelled_splits(rows, classes)


__all__ = ["CAPTION_TABLE_SUFFIXES", "caption_table_dataset", "image_folder_dataset", "label_table_dataset",
           "load_image_text_data"]
