"""Image-caption tables: open_clip CSV/TSV (``filepath``/``title``), SARCLIP lists (``filename``/``caption``),
SARLANG-style caption CSV/JSON/JSONL, and COCO caption json. Rows of the same image are grouped."""

from __future__ import annotations

import csv
import dataclasses
import json
from pathlib import Path

from ..errors import DatasetBuildError
from ..report import BuildReport

IMAGE_KEYS = ("filepath", "filename", "file_name", "image", "image_path", "img", "path")
CAPTION_KEYS = ("title", "caption", "captions", "text", "sentence")


@dataclasses.dataclass
class CaptionedImage:
    image_path: Path
    captions: list[str]


def _records(path: Path, separator: str | None) -> list[dict]:
    text = path.read_text(encoding="utf-8-sig")
    suffix = path.suffix.lower()
    if suffix == ".jsonl":
        return [json.loads(line) for line in text.splitlines() if line.strip()]
    if suffix == ".json":
        data = json.loads(text)
        if isinstance(data, dict) and "annotations" in data and "images" in data:  # COCO captions
            names = {im["id"]: im["file_name"] for im in data["images"]}
            return [{"file_name": names[a["image_id"]], "caption": a["caption"]} for a in data["annotations"]]
        if not isinstance(data, list):
            raise DatasetBuildError(path, "expected a list of records or a COCO captions file")
        return data
    if separator is None:  # open_clip's default is a tab; sniff from the header line
        header = text.split("\n", 1)[0]
        separator = "\t" if "\t" in header else ","
    return list(csv.DictReader(text.splitlines(), delimiter=separator))


def _key(path: Path, record: dict, wanted: str | None, candidates: tuple[str, ...], what: str) -> str:
    if wanted is not None:
        if wanted not in record:
            raise DatasetBuildError(path, f"no {what} column {wanted!r} (columns: {sorted(record)})")
        return wanted
    for key in candidates:
        if key in record:
            return key
    raise DatasetBuildError(path, f"no {what} column found among {candidates} (columns: {sorted(record)}); name it")


def read_caption_table(
    path: str | Path,
    report: BuildReport,
    image_key: str | None = None,
    caption_key: str | None = None,
    separator: str | None = None,
    image_root: str | Path | None = None,
) -> list[CaptionedImage]:
    """Read a caption table; relative image paths are resolved against ``image_root`` (default: the table's folder).

    Rows with an empty caption are skipped through ``report`` (which raises in strict mode), naming file and line.
    """
    path = Path(path)
    try:
        records = _records(path, separator)
    except (OSError, json.JSONDecodeError, csv.Error, KeyError, UnicodeDecodeError) as err:
        raise DatasetBuildError(path, f"unreadable caption table ({type(err).__name__}: {err})") from err
    if not records:
        raise DatasetBuildError(path, "caption table has no rows")
    image_key = _key(path, records[0], image_key, IMAGE_KEYS, "image")
    caption_key = _key(path, records[0], caption_key, CAPTION_KEYS, "caption")
    root = Path(image_root) if image_root is not None else path.parent
    grouped: dict[str, CaptionedImage] = {}
    # data rows start on line 2 of a CSV (after the header) and on line 1 of a JSONL file
    first_line = 2 if path.suffix.lower() in (".csv", ".tsv", ".txt") else 1
    for line, record in enumerate(records, start=first_line):
        image = str(record.get(image_key) or "").strip()
        value = record.get(caption_key)
        captions = value if isinstance(value, list) else [value]
        captions = [str(c).strip() for c in captions if c is not None]
        if not image:
            report.skip(str(path), f"row {line}: empty image path")
            continue
        if not captions or not all(captions):
            report.skip(str(path), f"row {line}: empty caption for image {image}")
            continue
        entry = grouped.setdefault(image, CaptionedImage(root / image, []))
        entry.captions.extend(captions)
    return list(grouped.values())
