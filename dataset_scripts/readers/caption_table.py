"""Image-caption tables: open_clip CSV/TSV (``filepath``/``title``), SARCLIP lists (``filename``/``caption``),
SARLANG-style caption CSV/JSON/JSONL, and COCO caption json. Rows of the same image are grouped."""

from __future__ import annotations

import csv
import dataclasses
import io
import json
from pathlib import Path

from ..errors import DatasetBuildError
from ..report import BuildReport
from .paths import check_inside

IMAGE_KEYS = ("filepath", "filename", "file_name", "image", "image_path", "img", "path")
CAPTION_KEYS = ("title", "caption", "captions", "text", "sentence")


@dataclasses.dataclass
class CaptionedImage:
    image_path: Path
    captions: list[str]


def read_table_records(path: Path, separator: str | None = None) -> list[dict]:
    """The rows of a CSV/TSV (strict quoting), JSON list, JSONL or COCO captions file as dicts; bad files are a
    DatasetBuildError naming the file and line."""
    text = path.read_text(encoding="utf-8-sig")
    suffix = path.suffix.lower()
    if suffix == ".jsonl":
        records = []
        for number, line in enumerate(text.splitlines(), start=1):
            try:
                records += [json.loads(line)] if line.strip() else []
            except json.JSONDecodeError as err:
                raise DatasetBuildError(path, f"line {number}: not JSON ({err})") from None
        return records
    if suffix == ".json":
        data = json.loads(text)
        if isinstance(data, dict) and "annotations" in data and "images" in data:  # COCO captions
            names = {im["id"]: im["file_name"] for im in data["images"]}
            return [{"file_name": names[a["image_id"]], "caption": a["caption"]} for a in data["annotations"]]
        if not isinstance(data, list):
            raise DatasetBuildError(path, "expected a list of records or a COCO captions file")
        return data
    if "\x00" in text:
        line = text[: text.index("\x00")].count("\n") + 1
        raise DatasetBuildError(path, f"line {line}: NUL byte: not a text table")
    if separator is None:  # open_clip's default is a tab; sniff from the header line
        header = text.split("\n", 1)[0]
        separator = "\t" if "\t" in header else ","
    reader = csv.DictReader(io.StringIO(text, newline=""), delimiter=separator, strict=True)
    try:
        return list(reader)
    except csv.Error as err:
        hint = " (an unbalanced '\"' quote?)" if "end of data" in str(err) else ""
        raise DatasetBuildError(path, f"line {reader.line_num + 1}: malformed CSV: {err}{hint}") from None


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
    inside: Path | None = None,
) -> list[CaptionedImage]:
    """Read a caption table; relative image paths are resolved against ``image_root`` (default: the table's folder).

    Rows with an empty caption, a missing or extra field, or (when ``inside`` is given) an image outside the folder
    ``inside`` are skipped through ``report`` (which raises in strict mode), naming file and line.
    """
    path = Path(path)
    try:
        records = read_table_records(path, separator)
    except (OSError, json.JSONDecodeError, KeyError, TypeError, UnicodeDecodeError) as err:
        raise DatasetBuildError(path, f"unreadable caption table ({type(err).__name__}: {err})") from err
    if not records:
        raise DatasetBuildError(path, "caption table has no rows")
    if not all(isinstance(record, dict) for record in records):
        raise DatasetBuildError(path, "every record must be an object of column names to values")
    image_key = _key(path, records[0], image_key, IMAGE_KEYS, "image")
    caption_key = _key(path, records[0], caption_key, CAPTION_KEYS, "caption")
    root = Path(image_root) if image_root is not None else path.parent
    grouped: dict[str, CaptionedImage] = {}
    is_csv = path.suffix.lower() in (".csv", ".tsv", ".txt")
    # data rows start on line 2 of a CSV (after the header) and on line 1 of a JSONL file
    for line, record in enumerate(records, start=2 if is_csv else 1):
        if is_csv and (None in record or None in record.values()):  # more or fewer fields than the header
            report.skip(str(path), f"row {line}: more or fewer fields than the header (a missing or extra separator?)")
            continue
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
        try:
            check_inside(root / image, inside, path, f"row {line}: image {image!r}")
        except DatasetBuildError as err:
            report.skip(err.path, err.problem)
            continue
        entry = grouped.setdefault(image, CaptionedImage(root / image, []))
        entry.captions.extend(captions)
    return list(grouped.values())
