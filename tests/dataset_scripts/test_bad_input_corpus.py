"""The bad-input corpus: generated broken images, TIFFs, tables, annotations, raw MSTAR files and option values, each
with its expected outcome: a clear error naming the file or field (`Error`), or a documented build-report entry
(`Entry`). Any other exception is a raw traceback and fails its case; a build that succeeds without the expected
entry is a silent wrong result and fails too. Builds run in-process on tiny inputs (a few subprocess checks of
exit codes and tracebacks are at the end)."""

import contextlib
import dataclasses
import hashlib
import io
import json
import os
import re
import struct
import subprocess
import sys
import zlib
from pathlib import Path

import datasets
import numpy as np
import pytest
import tifffile
from PIL import Image

from dataset_scripts import build_dataset
from dataset_scripts.__main__ import main
from dataset_scripts.loading import load_image_text_data
from sar_utils.command_line import USER_ERRORS
from dataset_scripts.readers import read_image_file, read_tiff

CARD_LABELS = {"skipped": "skipped items", "repaired": "repaired files", "flagged": "flagged items",
               "ignored": "ignored files"}


@dataclasses.dataclass(frozen=True)
class Error:
    """A user error (DatasetBuildError, ValueError, OSError...) whose message matches ``pattern`` (naming the file or
    field); a build leaves neither an output nor a temporary folder."""

    pattern: str


@dataclasses.dataclass(frozen=True)
class Entry:
    """A successful build whose report has, in ``section``, an entry "<path>: <text>" matching ``pattern``."""

    section: str
    pattern: str


@dataclasses.dataclass(frozen=True)
class Cli:
    """``python -m dataset_scripts ARGV``: exit code 2, ``pattern`` on stderr, no traceback, no output folder."""

    pattern: str


CASES = []


def case(group: str, name: str, run, expect) -> None:
    CASES.append(pytest.param(run, expect, id=f"{group}: {name}"))


# --- tiny inputs ---------------------------------------------------------------------------------------------------
def noise(height=32, width=32, dtype=np.uint8, seed=0) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 255, (height, width)).astype(dtype)


def encoded(fmt: str, array=None) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(noise() if array is None else array).save(buffer, fmt)
    return buffer.getvalue()


GOOD_PNG = encoded("PNG")
FORMATS = {"png": "PNG", "jpeg": "JPEG", "bmp": "BMP", "tif": "TIFF"}


def declared(fmt: str, width: int, height: int) -> bytes:
    """A small image whose header declares width x height (a decompression bomb)."""
    data = bytearray(encoded(FORMATS[fmt]))
    if fmt == "png":
        struct.pack_into(">II", data, 16, width, height)
        struct.pack_into(">I", data, 29, zlib.crc32(bytes(data[12:29])))
    elif fmt == "bmp":
        struct.pack_into("<ii", data, 18, width, height)
    elif fmt == "jpeg":
        sof = data.index(b"\xff\xc0")
        struct.pack_into(">HH", data, sof + 5, height, width)
    else:
        return b""  # TIFF: see sparse_tiff
    return bytes(data)


def sparse_tiff(path: Path, width=40000, height=40000) -> None:
    """An uncompressed TIFF declaring width x height whose pixels were never written (a sparse file)."""
    tifffile.imwrite(path, shape=(height, width), dtype=np.uint8)


def float_tiff(path: Path, bad=None, count=1, bands=2) -> None:
    """A (16, 16, bands) float32 dB raster; ``bad`` (nan or inf) in the first ``count`` samples."""
    array = np.full((16, 16, bands), -12.5, np.float32)
    if bad is not None:
        array.reshape(-1)[:count] = bad
    layout = {"planarconfig": "contig"} if bands > 1 else {}
    tifffile.imwrite(path, array if bands > 1 else array[:, :, 0], photometric="minisblack", **layout)


def write(folder: Path, files: dict) -> None:
    """name -> bytes, text, a callable(path), or None (no file)."""
    for name, content in files.items():
        path = folder / name
        if content is None:
            continue
        path.parent.mkdir(parents=True, exist_ok=True)
        if callable(content):
            content(path)
        elif isinstance(content, str):
            path.write_text(content)
        else:
            path.write_bytes(content)


def build(tmp: Path, name: str, source, **options):
    options.setdefault("test_fraction", 0.0)
    return build_dataset(name, source, tmp / "out", **options)


def folder_case(builder: str, name: str, files: dict, pattern: str, source="src") -> None:
    """A build of ``builder`` from the folder ``files`` (or ``source`` below tmp) that fails with ``pattern``."""
    def run(tmp):
        write(tmp / "src", files)
        return build(tmp, builder, tmp / source)
    case(builder.removesuffix("_det"), name, run, Error(pattern))


# --- 8-bit image files (read_image_file) -----------------------------------------------------------------------------
def image_case(name: str, fmt: str, content, pattern: str) -> None:
    def run(tmp):
        path = tmp / f"bad.{fmt}"
        if callable(content):
            content(path)
        elif content is not None:
            path.write_bytes(content)
        return read_image_file(path)

    case("image", f"{fmt} {name}", run, Error(rf"bad\.{fmt}: {pattern}"))


CUTS = {"first 8 bytes": lambda d: d[:8], "half": lambda d: d[: len(d) // 2],
        "zeroed magic": lambda d: bytes(4) + d[4:],
        "garbage": lambda d: b"not an image " * 8}
for fmt, pil_format in FORMATS.items():
    data = encoded(pil_format)
    for cut_name, cut in CUTS.items():
        image_case(cut_name, fmt, cut(data), "cannot read SAR image")
    image_case("empty", fmt, b"", "empty file")
    image_case("missing", fmt, None, "cannot read file")
    image_case("a folder", fmt, lambda path: path.mkdir(), "cannot read file")
    if fmt != "png":  # a PNG missing its last bytes is caught by its checksums, below
        image_case("last byte cut", fmt, data[:-1], "cannot read SAR image")
        image_case("last 20 bytes cut", fmt, data[:-20], "cannot read SAR image")
    huge = "(40000x40000 image .* exceeds the limit|refused before decoding)"
    image_case("declaring 40000x40000", fmt, declared(fmt, 40000, 40000) or sparse_tiff, huge)
    if fmt != "tif":
        image_case("declaring 10000x10000", fmt, declared(fmt, 10000, 10000), "10000x10000 image .* exceeds the limit")
image_case("end chunk cut", "png", GOOD_PNG[:-12], "damaged PNG")
image_case("last 20 bytes cut", "png", GOOD_PNG[:-20], "damaged PNG")
image_case("flipped bit", "png", GOOD_PNG[:100] + bytes([GOOD_PNG[100] ^ 1]) + GOOD_PNG[101:],
           "(damaged PNG|cannot read SAR image)")
image_case("16-bit", "png", encoded("PNG", noise(dtype=np.uint16) * 200), "expected an 8-bit image")
image_case("float", "tif", encoded("TIFF", noise().astype(np.float32)), "expected an 8-bit image")


# --- SAR rasters (read_tiff) -----------------------------------------------------------------------------------------
def tiff_case(name: str, make, pattern: str) -> None:
    def run(tmp):
        path = tmp / "bad.tif"
        make(path)
        return read_tiff(path)

    case("tiff", name, run, Error(rf"bad\.tif: {pattern}"))


def damaged_tiff(cut, **layout):
    def make(path):
        tifffile.imwrite(path, noise(48, 48).astype(np.float32), **layout)
        path.write_bytes(cut(path.read_bytes()))
    return make


TIFF_CUTS = {"empty": lambda d: b"", "first 8 bytes": lambda d: d[:8], "half": lambda d: d[: len(d) // 2],
             "last byte cut": lambda d: d[:-1], "last 20 bytes cut": lambda d: d[:-20],
             "zeroed magic": lambda d: bytes(4) + d[4:], "garbage": lambda d: b"II*\x00" + b"garbage" * 20}
for layout_name, layout in {"strips": {}, "zlib": {"compression": "zlib"}, "tiles": {"tile": (16, 16)}}.items():
    for cut_name, cut in TIFF_CUTS.items():
        tiff_case(f"{layout_name} {cut_name}", damaged_tiff(cut, **layout),
                  "(cannot read SAR image|truncated or corrupt TIFF)")  # cut data: refused from the header
tiff_case("missing", lambda path: None, "no such SAR image file")
tiff_case("a folder", lambda path: path.mkdir(), "no such SAR image file")
for dtype in ("int32", "int64"):
    tiff_case(f"{dtype} samples", lambda path, dtype=dtype: tifffile.imwrite(path, noise().astype(dtype)),
              f"unsupported sample type {dtype}")
tiff_case("4-d layout", lambda path: tifffile.imwrite(path, np.zeros((2, 3, 8, 8), np.float32),
                                                     photometric="minisblack"),
          "unsupported raster layout")
tiff_case("declaring 40000x40000", sparse_tiff, r"40000x40000 image \(1600000000 pixels\) exceeds the limit")
tiff_case("declaring 2 bands of 12000x8000", lambda path: tifffile.imwrite(
    path, shape=(8000, 12000, 2), dtype=np.float32, photometric="minisblack", planarconfig="contig"),
    r"12000x8000 image \(96000000 pixels\) exceeds the limit")


# --- caption tables (build "csv") ------------------------------------------------------------------------------------
GOOD_ROW = "good.png,a good caption\n"


def table_case(name: str, table: str, expect, files=None, table_name="pairs.csv", **options) -> None:
    def run(tmp):
        source = tmp / "src"
        write(source, {"good.png": GOOD_PNG, **(files or {}), table_name: table})
        return build(tmp, "csv", source / table_name, **options)

    case("csv", name, run, expect)


def row_case(name: str, row: str, section: str, pattern: str, files=None, **options) -> None:
    table_case(name, "filepath,title\n" + GOOD_ROW + row, Entry(section, pattern), files, **options)


CSV_ERROR = r"pairs\.csv: line \d+: malformed CSV: "
table_case("unbalanced quote in the first row", 'filepath,title\n"good.png,a caption\nb.png,more\n',
           Error(r"pairs\.csv: line 2: malformed CSV: unexpected end of data \(an unbalanced"))
table_case("unbalanced quote in the last row", 'filepath,title\n' + GOOD_ROW + 'good.png,"open caption\n',
           Error(CSV_ERROR + "unexpected end of data"))
table_case("unbalanced quote mid-table", 'filepath,title\n' + GOOD_ROW + 'good.png,"a\n' + GOOD_ROW,
           Error(CSV_ERROR + "unexpected end of data"))
table_case("unbalanced quote in a TSV", 'filepath\ttitle\ngood.png\t"a caption\n', Error(
    r"pairs\.tsv: line \d+: malformed CSV: unexpected end"), table_name="pairs.tsv")
table_case("text after a closing quote", 'filepath,title\ngood.png,"a caption"x\n', Error(CSV_ERROR + "',' expected"))
table_case("NUL byte", "filepath,title\ngood.png,a\x00caption\n", Error(r"pairs\.csv: line 2: NUL byte: not a text"))
table_case("not UTF-8", b"filepath,title\ngood.png,caf\xe9\n", Error(r"pairs\.csv: unreadable caption table \("
                                                                      "UnicodeDecodeError"))
table_case("empty file", "", Error(r"pairs\.csv: caption table has no rows"))
table_case("header only", "filepath,title\n", Error(r"pairs\.csv: caption table has no rows"))
table_case("no image column", "picture,title\n" + GOOD_ROW, Error(r"pairs\.csv: no image column found"))
table_case("no caption column", "filepath,words\n" + GOOD_ROW, Error(r"pairs\.csv: no caption column found"))
table_case("image key not a column", "filepath,title\n" + GOOD_ROW, Error(r"pairs\.csv: no image column 'pic'"),
           image_key="pic")
table_case("caption key not a column", "filepath,title\n" + GOOD_ROW, Error(r"pairs\.csv: no caption column 'c'"),
           caption_key="c")
table_case("all captions empty", "filepath,title\ngood.png,\ngood.png,  \n",
           Error(r"no items found:(.|\n)*pairs\.csv: row 2: empty caption for image good\.png"))
table_case("all images outside the source", "filepath,title\n/etc/hostname,a caption\n../x.png,b\n",
           Error(r"no items found:(.|\n)*row 2: image '/etc/hostname' lies outside the source folder; pass "
                 r"allow_outside_source=True \(--allow-outside-source\)"))
table_case("every row with a missing field", "filepath,title,extra\ngood.png,a\n",
           Error(r"no items found:(.|\n)*row 2: more or fewer fields than the header"))
table_case("json: not a list", json.dumps({"rows": []}), Error(r"caps\.json: expected a list of records"),
           table_name="caps.json")
table_case("json: list of strings", json.dumps(["good.png"]), Error(r"caps\.json: every record must be an object"),
           table_name="caps.json")
table_case("json: truncated", json.dumps([{"image": "good.png", "caption": "a"}])[:20],
           Error(r"caps\.json: unreadable caption table \(JSONDecodeError"), table_name="caps.json")
table_case("jsonl: bad line", '{"image": "good.png", "caption": "a"}\n{"image": \n',
           Error(r"caps\.jsonl: line 2: not JSON"), table_name="caps.jsonl")
table_case("jsonl: a list line", '{"image": "good.png", "caption": "a"}\n[1, 2]\n',
           Error(r"caps\.jsonl: every record must be an object"), table_name="caps.jsonl")
table_case("coco captions: unknown image id", json.dumps({
    "images": [{"id": 1, "file_name": "good.png"}], "annotations": [{"image_id": 7, "caption": "a"}]}),
    Error(r"caps\.json: unreadable caption table \(KeyError"), table_name="caps.json")
table_case("coco captions: annotation not an object", json.dumps({
    "images": [{"id": 1, "file_name": "good.png"}], "annotations": ["a caption"]}),
    Error(r"caps\.json: unreadable caption table \(TypeError"), table_name="caps.json")
table_case("two-character separator", "filepath,title\n" + GOOD_ROW,
           Error(r"separator \(--separator\) must be one character"), separator=";;")
table_case("empty band name", "filepath,title\n" + GOOD_ROW, Error(r"bands \(--bands\) must be non-empty names"),
           bands=["VV", " "])
table_case("strict: an empty caption", "filepath,title\n" + GOOD_ROW + "good.png,\n",
           Error(r"pairs\.csv: row 3: empty caption"), strict=True)
table_case("strict: a missing image", "filepath,title\n" + GOOD_ROW + "gone.png,a caption\n",
           Error(r"gone\.png: cannot read file"), strict=True)
row_case("an empty caption", "good.png,\n", "skipped", r"pairs\.csv: row 3: empty caption for image good\.png")
row_case("a blank caption", "good.png,   \n", "skipped", r"pairs\.csv: row 3: empty caption")
row_case("an empty image path", ",a caption\n", "skipped", r"pairs\.csv: row 3: empty image path")
row_case("an extra field", "good.png,a caption,extra\n", "skipped", r"pairs\.csv: row 3: more or fewer fields")
row_case("a missing field", "good.png\n", "skipped", r"pairs\.csv: row 3: more or fewer fields")
row_case("an absolute path outside", "/etc/passwd,a caption\n", "skipped",
         r"pairs\.csv: row 3: image '/etc/passwd' lies outside the source folder")
row_case("a relative path outside", "../../x.png,a caption\n", "skipped",
         r"row 3: image '\.\./\.\./x\.png' lies outside")
row_case("outside, allowed: not an image", "/etc/passwd,a caption\n", "skipped", r"passwd: cannot read SAR image",
         allow_outside_source=True)
row_case("a symlink in the folder to a file outside", "link.png,a caption\n", "skipped",
         r"row 3: image 'link\.png' is a symlink to /etc/hostname, outside the source folder",
         {"link.png": lambda path: path.symlink_to("/etc/hostname")})
row_case("a symlink outside, allowed: read", "link.png,a caption\n", "skipped", r"link\.png: cannot read SAR image",
         {"link.png": lambda path: path.symlink_to("/etc/hostname")}, allow_outside_source=True)
row_case("a missing image", "gone.png,a caption\n", "skipped", r"gone\.png: cannot read file")
row_case("a corrupt image", "bad.png,a caption\n", "skipped", r"bad\.png: cannot read SAR image",
         {"bad.png": GOOD_PNG[:60]})
row_case("a PNG cut in its end chunk", "cut.png,a caption\n", "skipped", r"cut\.png: damaged PNG",
         {"cut.png": GOOD_PNG[:-12]})
row_case("an image declaring 40000x40000", "bomb.png,a caption\n", "skipped", r"bomb\.png: refused before decoding",
         {"bomb.png": declared("png", 40000, 40000)})
row_case("a TIFF declaring 40000x40000", "bomb.tif,a caption\n", "skipped", r"bomb\.tif: 40000x40000 image",
         {"bomb.tif": sparse_tiff})
row_case("a float raster after 8-bit images", "db.tif,a caption\n", "skipped",
         r"db\.tif: the table's first image made this a dataset of 8-bit images", {"db.tif": float_tiff})
row_case("a folder as image", "sub,a caption\n", "skipped", r"sub: cannot read file", {"sub/x.txt": "x"})
row_case("a fluency check dropping captions", "two.png,second caption\n", "skipped",
         r"two\.png: fluency check returned",
         {"two.png": GOOD_PNG}, fluency_check=lambda captions: [c for c in captions if "second" not in c])


def float_table_case(name: str, make, section: str, pattern: str, **options) -> None:
    table = "filepath,title\na.tif,a float tile\nbad.tif,a float tile with bad values\n"
    table_case(name, table, Entry(section, pattern), {"a.tif": float_tiff, "bad.tif": make}, **options)


float_table_case("NaN values", lambda p: float_tiff(p, np.nan, 3), "skipped",
                 r"bad\.tif: 3 NaN/Inf values \(nan_policy='report' / --nan-policy report keeps them")
float_table_case("Inf values", lambda p: float_tiff(p, np.inf, 1), "skipped", r"bad\.tif: 1 NaN/Inf values")
float_table_case("-Inf values", lambda p: float_tiff(p, -np.inf, 2), "skipped", r"bad\.tif: 2 NaN/Inf values")
float_table_case("NaN values, policy report", lambda p: float_tiff(p, np.nan, 5), "flagged",
                 r"bad\.tif: 5 NaN/Inf values kept \(nan_policy='report'\)", nan_policy="report")
float_table_case("a 1-band raster among 2-band ones", lambda p: float_tiff(p, bands=1), "skipped",
                 r"bad\.tif: 1 bands but band names \['VV', 'VH'\]", bands=["VV", "VH"])
float_table_case("8-bit image after float rasters", lambda p: p.write_bytes(encoded("TIFF")), "skipped",
                 r"bad\.tif: the table's first image made this a dataset of float32 rasters")


folder_case("csv", "a folder without a table", {"good.png": GOOD_PNG}, r"src: no caption table")
folder_case("csv", "a missing source", {}, r"src: the source does not exist")
folder_case("csv", "several tables without a split name", {"good.png": GOOD_PNG, "a.csv": "filepath,title\n" + GOOD_ROW,
                                                        "b.csv": "filepath,title\n" + GOOD_ROW},
                r"a\.csv: several tables: each name must contain train, val or test")


# --- COCO detection json (build "coco_det") --------------------------------------------------------------------------
def coco_dict() -> dict:
    return {"images": [{"id": 1, "file_name": "one.png", "width": 32, "height": 32},
                       {"id": 2, "file_name": "two.png", "width": 32, "height": 32}],
            "categories": [{"id": 1, "name": "ship"}],
            "annotations": [{"id": 1, "image_id": 1, "category_id": 1, "bbox": [2, 2, 10, 10]},
                            {"id": 2, "image_id": 2, "category_id": 1, "bbox": [4, 4, 8, 8]}]}


def coco_case(name: str, edit, expect, files=None, **options) -> None:
    """``edit(coco)`` changes the good two-image file (or returns the text or bytes to write instead)."""
    def run(tmp):
        coco = coco_dict()
        text = edit(coco)
        write(tmp / "src", {"images/one.png": GOOD_PNG, "images/two.png": GOOD_PNG, **(files or {}),
                            "ann.json": text if isinstance(text, (str, bytes)) else json.dumps(coco)})
        return build(tmp, "coco_det", tmp / "src" / "ann.json", **options)

    case("coco", name, run, expect)


def coco_error(name, edit, pattern, **options):
    coco_case(name, edit, Error(r"ann\.json: " + pattern), **options)


def setter(path: str, value):
    """An edit setting coco[...] along ``path`` ("annotations.1.bbox") to ``value`` (``...`` deletes it)."""
    *parents, last = [int(p) if p.isdigit() else p for p in path.split(".")]

    def edit(coco):
        target = coco
        for key in parents:
            target = target[key]
        if value is ...:
            del target[last]
        else:
            target[last] = value
    return edit


coco_error("not json", lambda coco: "{images: [", "not a valid COCO detection file \\(JSONDecodeError")
coco_error("truncated json", lambda coco: json.dumps(coco)[:50], "not a valid COCO detection file")
coco_error("a list", lambda coco: "[]", "a COCO file is a json object, got list")
coco_error("a string", lambda coco: '"coco"', "a COCO file is a json object, got str")
coco_error("not UTF-8", lambda coco: b'{"images": "caf\xe9"}', "not a valid COCO detection file \\(UnicodeDecodeError")
coco_error("no images", setter("images", ...), "'images' must be a list, got NoneType")
coco_error("no categories", setter("categories", ...), "'categories' must be a list, got NoneType")
coco_error("images an object", setter("images", {"1": {}}), "'images' must be a list, got dict")
coco_error("annotations an object", setter("annotations", {}), "'annotations' must be a list, got dict")
for kind, value in {"a string": "image", "a list": [1, 2], "a number": 3, "null": None}.items():
    coco_error(f"an image entry is {kind}", setter("images.1", value), r"images\[1\] is \w+ .*not an object")
    coco_error(f"an annotation is {kind}", setter("annotations.0", value), r"annotations\[0\] is \w+ .*not an object")
    coco_error(f"a category is {kind}", setter("categories.0", value), r"categories\[0\] is \w+ .*not an object")
coco_error("an image without width", setter("images.0.width", ...), r"images\[0\] is malformed \(KeyError: 'width'")
coco_error("an image without file_name", setter("images.1.file_name", ...), r"images\[1\] is malformed \(KeyError")
coco_error("a width that is text", setter("images.0.width", "wide"), r"images\[0\] is malformed \(ValueError")
coco_error("an id that is a list", setter("images.0.id", [1]), r"images\[0\] is malformed \(TypeError")
coco_error("a category without name", setter("categories.0.name", ...), r"categories\[0\] is malformed \(KeyError")
coco_error("an annotation without bbox", setter("annotations.1.bbox", ...), r"annotation 2 is malformed \(KeyError")
coco_error("an annotation without image_id", setter("annotations.0.image_id", ...), "annotation 1 is malformed")
coco_error("a bbox of 3 numbers", setter("annotations.1.bbox", [1, 2, 3]), r"annotation 2 is malformed \(ValueError")
coco_error("a bbox of 5 numbers", setter("annotations.1.bbox", [1, 2, 3, 4, 5]), "annotation 2 is malformed")
coco_error("a bbox of text", setter("annotations.1.bbox", ["a", "b", "c", "d"]), "annotation 2 is malformed")
coco_error("a null bbox", setter("annotations.1.bbox", None), r"annotation 2 is malformed \(TypeError")
coco_error("a bbox that is a string", setter("annotations.0.bbox", "1,2,3,4"), "annotation 1 is malformed")
coco_error("an unknown image id", setter("annotations.1.image_id", 9), "annotation 2 refers to unknown image id 9")
coco_error("an unknown category id", setter("annotations.1.category_id", 5), "annotation 2 has unknown category id 5")
coco_error("a duplicate image id", setter("images.1.id", 1), r"image id 1 is used twice \(one\.png and two\.png\)")
coco_error("a duplicate file_name", setter("images.1.file_name", "one.png"),
           r"images 1 and 2 are one file one\.png \(one picture would carry the other's boxes\)")
coco_error("two names, one file", lambda coco: coco["images"][1].update(file_name="other/one.png"),
           "images 1 and 2 are one file one\\.png")
coco_error("a duplicate category id", lambda coco: coco["categories"].append({"id": 1, "name": "boat"}),
           "two categories share an id")
coco_error("an absolute file_name outside", setter("images.1.file_name", "/etc/passwd"),
           "image 2 file_name '/etc/passwd' lies outside the source folder; pass allow_outside_source=True")
coco_case("a relative file_name outside", setter("images.1.file_name", "../outside.png"), Error(
    r"ann\.json: image 2 file_name '\.\./outside\.png' lies outside the source folder"), {"../outside.png": GOOD_PNG})
coco_case("an unknown class", setter("categories.0.name", "zeppelin"), Error(r"ann\.json: unknown class 'zeppelin'"))
coco_case("strict: a box outside", setter("annotations.1.bbox", [40, 40, 5, 5]),
          Error(r"ann\.json: two\.png: box \[40\.0, 40\.0, 45\.0, 45\.0\] \(ship\) lies outside the 32x32 image"),
          strict=True)
for where, bbox in {"left": [-4, 2, 10, 10], "top": [2, -3, 10, 10], "right": [28, 2, 10, 10],
                    "bottom": [2, 30, 10, 10], "every side": [-1, -1, 40, 40]}.items():
    coco_case(f"a box over the {where} edge", setter("annotations.1.bbox", bbox),
              Entry("repaired", r"ann\.json: two\.png: box .* \(ship\) clipped to the 32x32 image: \["))
for what, bbox, problem in (("entirely right of", [40, 2, 5, 5], "lies outside the 32x32 image"),
                            ("entirely above", [2, -20, 5, 5], "lies outside the 32x32 image"),
                            ("a zero-width box in", [2, 2, 0, 5], "has no area"),
                            ("a negative-height box in", [2, 2, 5, -5], "has no area"),
                            ("a NaN box in", [float("nan"), 2, 5, 5], "has no area")):
    coco_case(f"{what} the image", setter("annotations.1.bbox", bbox),
              Entry("skipped", rf"ann\.json: two\.png: box .* \(ship\) {problem}"))
coco_case("an annotated size that differs", setter("images.1.width", 40),
          Entry("skipped", r"ann\.json: two\.png: annotated size 40x32, image is 32x32"))
coco_case("a missing image file", setter("images.1.file_name", "gone.png"),
          Entry("skipped", r"gone\.png: cannot read file"))
coco_case("a corrupt image file", lambda coco: None, Entry("skipped", r"two\.png: cannot read SAR image"),
          {"images/two.png": GOOD_PNG[:100]})
coco_case("a 16-bit image file", lambda coco: None, Entry("skipped", r"two\.png: expected an 8-bit image"),
          {"images/two.png": encoded("PNG", noise(dtype=np.uint16) * 200)})


folder_case("coco_det", "no json in the folder", {"one.png": GOOD_PNG}, r"src: no COCO json file")
folder_case("coco_det", "several json without a split name", {"a.json": "{}", "b.json": "{}"},
                 r"a\.json: (several json files|'categories' must be a list)")


# --- Pascal VOC (build "voc_det") ------------------------------------------------------------------------------------
VOC = ("<annotation><filename>{name}.png</filename><size><width>32</width><height>32</height></size>"
       "<object><name>ship</name><bndbox><xmin>2</xmin><ymin>2</ymin><xmax>12</xmax><ymax>12</ymax></bndbox></object>"
       "</annotation>")


def voc_case(name: str, bad_xml: str, expect, files=None, **options) -> None:
    def run(tmp):
        write(tmp / "src", {"Annotations/a.xml": VOC.format(name="a"), "Annotations/b.xml": bad_xml,
                            "JPEGImages/a.png": GOOD_PNG, "JPEGImages/b.png": GOOD_PNG, **(files or {})})
        return build(tmp, "voc_det", tmp / "src", **options)

    case("voc", name, run, expect)


def voc_skip(name: str, old: str, new: str, pattern: str, files=None) -> None:
    voc_case(name, VOC.format(name="b").replace(old, new), Entry("skipped", r"b\.xml: " + pattern), files)


voc_case("malformed xml", "<annotation><size>", Entry("skipped", r"b\.xml: malformed VOC xml"))
voc_case("an empty xml file", "", Entry("skipped", r"b\.xml: malformed VOC xml"))
voc_skip("no size", "size>", "sise>", "no <size> element")
voc_skip("a width that is text", "<width>32", "<width>wide", "<width> is missing or not a number: 'wide'")
voc_skip("no height", "<height>32</height>", "", "<height> is missing or not a number: None")
voc_skip("a zero width", "<width>32", "<width>0", "<size><width> must be a positive number, got 0")
voc_skip("a NaN width", "<width>32", "<width>nan", "<size><width> must be a positive number, got nan")
voc_skip("an infinite height", "<height>32", "<height>inf", "<size><height> must be a positive number, got inf")
voc_skip("an object without name", "<name>ship</name>", "", "an <object> lacks <name> or <bndbox>")
voc_skip("an object without bndbox", "bndbox>", "box>", "an <object> lacks <name> or <bndbox>")
voc_skip("a bndbox without xmax", "<xmax>12</xmax>", "", "<xmax> is missing or not a number")
voc_skip("a coordinate that is text", "<xmin>2", "<xmin>two", "<xmin> is missing or not a number: 'two'")
voc_skip("a filename outside the source", "<filename>b.png", "<filename>../../b.png",
         "<filename> '../../b.png' lies outside the source folder", {"../b.png": GOOD_PNG})
voc_skip("an absolute filename outside", "<filename>b.png", "<filename>/etc/passwd",
         "<filename> '/etc/passwd' lies outside the source folder")
voc_skip("a box entirely outside", "<xmin>2</xmin><ymin>2</ymin><xmax>12", "<xmin>40</xmin><ymin>2</ymin><xmax>50",
         r"b\.png: box .* lies outside the 32x32 image")
voc_skip("a box without area", "<xmax>12", "<xmax>2", r"b\.png: box .* has no area")
voc_case("a missing image file", VOC.format(name="b"), Entry("skipped", r"b\.png: cannot read file"),
         {"JPEGImages/b.png": None})
voc_case("a corrupt image file", VOC.format(name="b"), Entry("skipped", r"b\.png: cannot read SAR image"),
         {"JPEGImages/b.png": b"\x89PNG\r\n\x1a\n broken"})
voc_case("a box over the edge", VOC.format(name="b").replace("<xmax>12", "<xmax>50"),
         Entry("repaired", r"b\.xml: b\.png: box \[2\.0, 2\.0, 50\.0, 12\.0\] \(ship\) clipped to the 32x32 image"))
voc_case("an xml not in the split lists", VOC.format(name="b"), Entry("ignored", r"b\.xml: not listed in any"),
         {"ImageSets/Main/train.txt": "a\n"})
voc_case("an unknown class", VOC.format(name="b").replace("ship", "zeppelin"),
         Error(r"b\.xml: unknown class 'zeppelin'"))


folder_case("voc_det", "no annotation folder", {"JPEGImages/a.png": GOOD_PNG}, r"src: no annotation folder")
folder_case("voc_det", "no image folder", {"Annotations/a.xml": VOC.format(name="a")}, r"src: no image folder")
folder_case("voc_det", "every xml bad", {"Annotations/a.xml": "<x", "JPEGImages/a.png": GOOD_PNG},
                r"no items found:(.|\n)*a\.xml: malformed VOC xml")


# --- raw MSTAR Phoenix files (build "mstar_raw") ---------------------------------------------------------------------
def phoenix(rows=4, cols=4, values=None, extra=b"", **fields) -> bytes:
    """A raw MSTAR file: Phoenix header (``fields`` override it, ``...`` drops a field) + big-endian payload."""
    payload = (np.arange(2 * rows * cols) if values is None else values).astype(">f4").tobytes()
    header = {"PhoenixHeaderLength": 512, "NumberOfRows": rows, "NumberOfColumns": cols, "TargetType": "bmp2_tank",
              "DesiredDepression": 17, "TargetAz": 30, "Chip_MD5_CheckSum": hashlib.md5(payload).hexdigest()}
    header.update(fields)
    text = "[PhoenixHeaderVer01.04]\n" + "".join(f"{k}= {v}\n" for k, v in header.items() if v is not ...)
    return (text + "[EndofPhoenixHeader]\n").encode().ljust(512, b" ") + payload + extra


def raw_case(name: str, bad, expect, **options) -> None:
    def run(tmp):
        write(tmp / "src", {"good.000": phoenix(), "bad.001": bad})
        return build(tmp, "mstar_raw", tmp / "src", **options)

    case("mstar_raw", name, run, expect)


def raw_skip(name, bad, pattern, **options):
    raw_case(name, bad, Entry("skipped", r"bad\.001: " + pattern), **options)


NAN_PAYLOAD = np.arange(32.0)
NAN_PAYLOAD[[3, 20]] = np.nan
raw_skip("no end marker", phoenix().replace(b"[EndofPhoenixHeader]", b"[EndOfData]"),
         "truncated Phoenix header: no '\\[EndofPhoenixHeader\\]' marker")
raw_skip("a row count that is text", phoenix(NumberOfRows="four"), "header field NumberOfRows has a non-numeric value")
raw_skip("a depression that is text", phoenix(DesiredDepression="steep"), "header field DesiredDepression has a non")
for field in ("PhoenixHeaderLength", "NumberOfRows", "NumberOfColumns"):
    raw_skip(f"no {field}", phoenix(**{field: ...}), f"Phoenix header lacks {field}")
raw_skip("zero rows", phoenix(NumberOfRows=0), "invalid chip size 0x4 in header")
raw_skip("negative columns", phoenix(NumberOfColumns=-4), "invalid chip size 4x-4 in header")
raw_skip("4 payload bytes cut", phoenix()[:-4],
         "truncated: 4x4 chip needs 128 payload bytes after offset 512, found 124")
raw_skip("the payload cut off", phoenix()[:512], "truncated: 4x4 chip needs 128 payload bytes .* found 0")
raw_skip("a header declaring 100000x100000", phoenix(NumberOfRows=100000, NumberOfColumns=100000), "truncated")
raw_skip("16 bytes too many", phoenix(extra=bytes(16)), "16 unexpected bytes after the 4x4 magnitude\\+phase payload")
raw_skip("a flipped payload byte", phoenix()[:-3] + b"\x01" + phoenix()[-2:], "MD5 mismatch")
raw_skip("a wrong checksum", phoenix(Chip_MD5_CheckSum="0" * 32), "MD5 mismatch: header Chip_MD5_CheckSum 0+")
raw_skip("no DesiredDepression", phoenix(DesiredDepression=...), "Phoenix header lacks DesiredDepression")
raw_skip("NaN magnitudes", phoenix(values=NAN_PAYLOAD), "2 NaN/Inf values")
raw_skip("an infinite phase", phoenix(values=np.r_[np.arange(31.0), np.inf]), "1 NaN/Inf values")
raw_skip("no checksum, required", phoenix(Chip_MD5_CheckSum=...), "no Chip_MD5_CheckSum in the header: the payload "
         "cannot be verified \\(refused: require_checksum / --require-checksum\\)", require_checksum=True)
raw_case("no checksum", phoenix(Chip_MD5_CheckSum=...), Entry(
    "flagged", r"bad\.001: no Chip_MD5_CheckSum in the header: .* read unverified \(--require-checksum refuses it\)"))
raw_case("an empty checksum", phoenix(Chip_MD5_CheckSum=""), Entry("flagged", r"bad\.001: no Chip_MD5_CheckSum"))
raw_case("NaN magnitudes, policy report", phoenix(values=NAN_PAYLOAD),
         Entry("flagged", r"bad\.001: 2 NaN/Inf values kept"), nan_policy="report")
raw_case("a text file", "just notes\n", Entry("ignored", r"bad\.001: not a Phoenix-header MSTAR file"))
raw_case("a marker after 64 bytes", b" " * 80 + phoenix(), Entry("ignored", r"bad\.001: not a Phoenix-header"))
raw_case("an unknown target type", phoenix(TargetType="ufo"), Error(r"bad\.001: unknown class 'ufo'"))
raw_case("strict: an MD5 mismatch", phoenix(Chip_MD5_CheckSum="0" * 32), Error(r"bad\.001: MD5 mismatch"), strict=True)


folder_case("mstar_raw", "every header bad", {"a.000": phoenix(NumberOfRows="x"), "b.000": phoenix()[:100]},
                r"no items found:(.|\n)*a\.000: header field NumberOfRows(.|\n)*b\.000: truncated Phoenix header")
folder_case("mstar_raw", "only text files", {"notes.txt": "x"},
                r"no items found:(.|\n)*notes\.txt: not a Phoenix-header MSTAR file")
folder_case("mstar_raw", "a file as source", {"good.000": phoenix()}, r"good\.000: raw MSTAR folder does not exist",
                "src/good.000")


# --- MSTAR chip folders (build "mstar") ------------------------------------------------------------------------------
def chips_case(name: str, files: dict, expect, **options) -> None:
    def run(tmp):
        write(tmp / "src", {"train/T72/good.png": GOOD_PNG, **files})
        return build(tmp, "mstar", tmp / "src", **options)

    case("mstar", name, run, expect)


chips_case("a corrupt chip", {"train/T72/bad.png": GOOD_PNG[:80]}, Entry("skipped", r"bad\.png: cannot read SAR"))
chips_case("an empty chip", {"train/T72/bad.jpeg": b""}, Entry("skipped", r"bad\.jpeg: empty file"))
chips_case("a truncated JPEG", {"train/T72/bad.jpeg": encoded("JPEG")[:-30]},
           Entry("skipped", r"bad\.jpeg: cannot read SAR image"))
chips_case("a 16-bit chip", {"train/T72/bad.png": encoded("PNG", noise(dtype=np.uint16) * 200)},
           Entry("skipped", r"bad\.png: expected an 8-bit image"))
chips_case("a chip declaring 40000x40000", {"train/T72/bad.bmp": declared("bmp", 40000, 40000)},
           Entry("skipped", r"bad\.bmp: refused before decoding"))
chips_case("a README at the root", {"README.md": "x"}, Entry("ignored", r"README\.md: not a <split>/<class>/ folder"))
chips_case("a file at the split level", {"train/list.txt": "x"}, Entry("ignored", r"list\.txt: not a <split>/<class>/"))
chips_case("a non-image file", {"train/T72/notes.txt": "x"}, Entry("ignored", r"notes\.txt: not an image file"))
chips_case("an unknown class folder", {"train/UFO/x.png": GOOD_PNG}, Error(r"UFO: unknown class 'UFO'"))
chips_case("strict: a corrupt chip", {"train/T72/bad.png": GOOD_PNG[:80]}, Error(r"bad\.png: cannot read SAR"),
           strict=True)
chips_case("every chip corrupt", {"train/T72/good.png": b"x"}, Error(r"every item was skipped:(.|\n)*good\.png"))


folder_case("mstar", "no chips", {"train/T72/notes.txt": "x"},
                  r"src: no chips found: expected <root>/<split>/<class>/<chip>\.jpeg")
folder_case("mstar", "a missing source", {}, r"src: the source does not exist")


# --- OpenSARShip (build "opensarship") -------------------------------------------------------------------------------
SCENE = "S1A_IW_GRDH_1SDV_20150902T102505_20150902T102534_007535_00A699_2D00"
SHIP = ("<ship><SARShipInformation><Center_x>{x}</Center_x><Center_y>20</Center_y><Manual_Length>5</Manual_Length>"
        "<Incidence>30</Incidence></SARShipInformation><AISShipInformation><MMSI>123</MMSI><Ship_Type>70</Ship_Type>"
        "<Length>100</Length><Width>20</Width></AISShipInformation></ship>")
SHIPS = f"<ShipList>{SHIP.format(x=10)}{SHIP.format(x=50)}</ShipList>"
CHIP_A, CHIP_B = "Visual_Cargo_x10_y20_vv.tif", "Visual_Cargo_x50_y20_vh.tif"


def ships_case(name: str, ship_xml: str, expect, files=None) -> None:
    def run(tmp):
        chips = f"{SCENE}/Patch_Uint8/"
        write(tmp / "src", {f"{SCENE}/Ship.xml": ship_xml, chips + CHIP_A: encoded("TIFF"),
                            chips + CHIP_B: encoded("TIFF"), **{chips + k: v for k, v in (files or {}).items()}})
        return build(tmp, "opensarship", tmp / "src")

    case("opensarship", name, run, expect)


ships_case("malformed xml", "<ShipList><ship>", Error(r"Ship\.xml: malformed XML"))
ships_case("a ship without Center_x", SHIPS.replace("<Center_x>50</Center_x>", ""),
           Error(r"Ship\.xml: ship entry lacks SARShipInformation/Center_x"))
ships_case("a length that is text", SHIPS.replace("<Length>100", "<Length>long"),
           Error(r"Ship\.xml: AISShipInformation/Length is not a number: 'long'"))
ships_case("two ships at one centre", SHIPS.replace("<Center_x>50", "<Center_x>10"),
           Error(r"Ship\.xml: two ships share the centre x=10 y=20"))
ships_case("no ship entries", "<ShipList></ShipList>", Error(r"Ship\.xml: no <ship> entries"))
ships_case("a backslash closing tag", SHIPS.replace("</ShipList>", "<\\ShipList>"),
           Entry("repaired", r"Ship\.xml: malformed closing tag\(s\) <\\ShipList> -> </ShipList>"))
ships_case("a chip without its ship", SHIPS,
           Entry("skipped", r"Visual_Cargo_x99_y20_vv\.tif: no ship with centre x=99"),
           {"Visual_Cargo_x99_y20_vv.tif": encoded("TIFF")})
ships_case("a chip without polarisation", SHIPS, Entry("skipped", r"x50_y20\.tif: chip name has no polarisation"),
           {"Visual_Cargo_x50_y20.tif": encoded("TIFF")})
ships_case("a corrupt chip", SHIPS, Entry("skipped", r"x50_y20_vv\.tif: cannot read SAR image"),
           {"Visual_Cargo_x50_y20_vv.tif": b"II*\x00 broken"})
ships_case("a file that is not a chip", SHIPS, Entry("ignored", r"notes\.txt: not an OpenSARShip chip name"),
           {"notes.txt": "x"})
ships_case("an unknown ship type", SHIPS, Error(r"Visual_Zeppelin_x50_y20_vv\.tif: unknown class 'Zeppelin'"),
           {"Visual_Zeppelin_x50_y20_vv.tif": encoded("TIFF")})


folder_case("opensarship", "no Ship.xml", {"notes.txt": "x"}, r"src: no Ship\.xml found")
folder_case("opensarship", "no chip folder", {f"{SCENE}/Ship.xml": SHIPS},
                  r"no items found:(.|\n)*Ship\.xml: no chip folder")


# --- sarclip_mix -----------------------------------------------------------------------------------------------------
def mix_case(name: str, components, expect, files=None) -> None:
    def run(tmp):
        write(tmp / "src", {"tiles/db.tif": float_tiff, "tiles/t.csv": "filepath,title\ndb.tif,a tile\n",
                            "chips/train/T72/good.png": GOOD_PNG, **(files or {})})
        specs = None if components is None else [(n, str(tmp / "src" / p), o) for n, p, o in components]
        return build(tmp, "sarclip_mix", tmp / "src", components=specs)

    case("sarclip_mix", name, run, expect)


mix_case("an unknown component", [("nope", "chips", {})], Error(r"chips: unknown mix component 'nope'"))
mix_case("a component without images", [("csv", "tiles/t.csv", {})],
         Error(r"t\.csv: component csv has no 8-bit image column"))
mix_case("a root without components", None, Error(r"src: no mix component found"))
mix_case("a bad chip in a component", [("mstar", "chips", {})],
         Entry("skipped", r"bad\.png: .*cannot read SAR image"), {"chips/train/T72/bad.png": b"\x89PNG"})


# --- the training loader (`--data` of the trainers and eval commands) ----------------------------------------------
def loader_case(name: str, files: dict, data: str, pattern: str) -> None:
    """`load_image_text_data(tmp/data)` on ``files`` (below tmp; {tmp} in a text is the folder) fails with
    ``pattern``: a table or image folder names images only inside its own folder, as a builder's source does."""
    def run(tmp):
        (tmp / "private").mkdir()
        (tmp / "private" / "secret.png").write_bytes(GOOD_PNG)
        write(tmp, {name: (content.format(tmp=tmp) if isinstance(content, str) else content)
                    for name, content in files.items()})
        for link, target in LINKS.get(data, {}).items():
            (tmp / link).parent.mkdir(parents=True, exist_ok=True)
            (tmp / link).symlink_to(tmp / target)
        return load_image_text_data(str(tmp / data))
    case("loader", name, run, Error(pattern))


def dataset_folder_case(name: str, bad: np.ndarray, split: str, pattern: str) -> None:
    """A dataset folder (parquet shards, as `load_dataset` reads it) with one bad image in ``split``: refused when
    loaded, before any training, naming the split, the row and the stored file name."""
    def run(tmp):
        def image(array, name):  # None: bytes that are no image
            buffer = io.BytesIO()
            tifffile.imwrite(buffer, array) if array is not None else buffer.write(b"II*\x00 truncated")
            return {"bytes": buffer.getvalue(), "path": name}

        features = datasets.Features({"image": datasets.Image(), "captions": datasets.Sequence(datasets.Value("string"))})
        for part in ("train", "test"):
            rows = [{"image": image(noise(seed=i), f"{part}{i}.tif"), "captions": ["a chip"]} for i in range(4)]
            if part == split:
                rows[2]["image"] = image(bad, "bad.tif")
            shard = tmp / "data" / "data" / f"{part}-00000-of-00001.parquet"
            shard.parent.mkdir(parents=True, exist_ok=True)
            datasets.Dataset.from_list(rows, features=features).to_parquet(shard)
        return load_image_text_data(str(tmp / "data"))
    case("loader", name, run, Error(pattern))


_INF = np.full((16, 16), -9.0, np.float32)
_INF[0, 0] = np.inf
dataset_folder_case("an inf pixel in a dataset folder's test split", _INF, "test",
                    r"data: split 'test': row 2 \(bad\.tif\): unusable image: 1 NaN/inf pixel values")
dataset_folder_case("undecodable bytes in a dataset folder's train split", None, "train",
                    r"data: split 'train': row 2 \(bad\.tif\): unusable image: cannot decode it")


LINKS = {"chips": {"chips/T72": "private"},
         "linked": {"linked/BMP2/in.png": "private/secret.png"}}
OUTSIDE = r"lies outside the data folder; pass --allow_outside_data"
loader_case("a label table row with ..", {"data/labels.csv": "image,label\na.png,T72\n../private/secret.png,BMP2\n",
                                          "data/a.png": GOOD_PNG}, "data/labels.csv",
            r"labels\.csv: row 3: image '\.\./private/secret\.png' " + OUTSIDE)
loader_case("a label table row with an absolute path",
            {"data/labels.csv": "image,label\na.png,T72\n{tmp}/private/secret.png,BMP2\n", "data/a.png": GOOD_PNG},
            "data/labels.csv", r"labels\.csv: row 3: image '/.*/private/secret\.png' " + OUTSIDE)
loader_case("a JSON label table row with ..",
            {"data/labels.json": '[{{"image": "a.png", "label": 1}}, {{"image": "../private/secret.png", "label": 2}}]',
             "data/a.png": GOOD_PNG}, "data/labels.json", r"labels\.json: row 3: image .*" + OUTSIDE)
loader_case("a caption table row with ..",
            {"data/captions.csv": "filepath,title\na.png,a tank\n../private/secret.png,a truck\n",
             "data/a.png": GOOD_PNG}, "data/captions.csv", r"captions\.csv: image '.*secret\.png' " + OUTSIDE)
loader_case("a symlinked class folder", {"chips/BMP2/b.png": GOOD_PNG}, "chips",
            r"T72/secret\.png: image is a symlink to .*private/secret\.png, outside the data folder")
loader_case("a symlinked image", {"linked/T72/a.png": GOOD_PNG}, "linked",
            r"BMP2/in\.png: image is a symlink to .*private/secret\.png, outside the data folder")


# --- command-line options --------------------------------------------------------------------------------------------
def cli_case(name: str, argv, pattern: str, files=None) -> None:
    """``argv`` with {src} (a small MSTAR chip folder), {tmp} and {file} (an existing file) filled in."""
    def run(tmp):
        write(tmp, {"src/train/T72/good.png": GOOD_PNG, "file": "x", "built/README.md": "# card", **(files or {})})
        args = [arg.format(src=tmp / "src", tmp=tmp, file=tmp / "file") for arg in argv]
        stderr = io.StringIO()
        with contextlib.redirect_stderr(stderr), contextlib.redirect_stdout(io.StringIO()):
            try:
                code = main(args)
            except SystemExit as exit_:  # argparse: usage + error
                code = exit_.code
        return code, stderr.getvalue()

    case("options", name, run, Cli(pattern))


MSTAR = ["build", "mstar", "--source", "{src}", "--out", "{tmp}/out"]
SYNTHETIC = ["build", "synthetic", "--out", "{tmp}/out"]
for value in ("0", "-1"):
    cli_case(f"--max-items {value}", MSTAR + ["--max-items", value], f"max_items \\(--max-items\\) must be at least 1, "
             f"got {value}")
for value in ("2", "-0.1", "1", "nan"):
    cli_case(f"--test-fraction {value}", MSTAR + ["--test-fraction", value],
             r"test_fraction \(--test-fraction\) must be in \[0, 1\)")
for option, value, pattern in (
        ("--num-train", "0", r"num_train \(--num-train\) must be at least 1"),
        ("--num-test", "-1", r"num_test \(--num-test\) at least 0"),
        ("--image-size", "8", "image_size must be in \\[32, "),
        ("--looks", "0", r"looks \(--looks\) must be positive"),
        ("--max-shard-size", "abc", r"max_shard_size \(--max-shard-size\) must be a positive size"),
        ("--max-shard-size", "0MB", r"max_shard_size \(--max-shard-size\) must be a positive size"),
        ("--nan-policy", "drop", "argument --nan-policy: invalid choice: 'drop'"),
        ("--seed", "abc", "argument --seed: invalid int value: 'abc'"),
        ("--max-items", "many", "argument --max-items: invalid int value"),
        ("--separator", ";;", "synthetic does not take --separator"),
        ("--class-section", "nope", "no section 'nope'"),
        ("--push-to-hub", "bad repo", "Repo id must use alphanumeric chars")):
    cli_case(f"{option} {value}", SYNTHETIC + [option, value], pattern)
cli_case("--class-section nope", MSTAR + ["--class-section", "nope"],
         r"class_section / class_names \(--class-section / --class-names.*no section 'nope'")
cli_case("--out is a file", ["build", "mstar", "--source", "{src}", "--out", "{file}"], r"file: --out is a file")
cli_case("--out below a file", ["build", "mstar", "--source", "{src}", "--out", "{file}/sub"],
         r"is a file, not a folder")
cli_case("--out is the source", ["build", "mstar", "--source", "{src}", "--out", "{src}", "--overwrite"],
         r"src: --out would replace the source folder")
cli_case("--out holds the source", ["build", "mstar", "--source", "{src}", "--out", "{tmp}", "--overwrite"],
         r"--out would replace the source folder")
cli_case("--out not empty", ["build", "mstar", "--source", "{src}", "--out", "{tmp}/built"],
         r"built is not empty \(pass overwrite=True / --overwrite\)")
cli_case("--source missing", ["build", "mstar", "--source", "{tmp}/nowhere", "--out", "{tmp}/out"],
         r"nowhere: the source does not exist")
cli_case("no --source", ["build", "mstar", "--out", "{tmp}/out"], r"mstar needs a source \(--source\)")
cli_case("an unknown dataset", ["build", "imagenet", "--out", "{tmp}/out"], "argument name: invalid choice: 'imagenet'")
cli_case("--num-train for mstar", MSTAR + ["--num-train", "3"], "mstar does not take --num-train")
cli_case("--require-checksum for mstar", MSTAR + ["--require-checksum"], "mstar does not take --require-checksum")
cli_case("--with-boxes for mstar", MSTAR + ["--with-boxes"], "mstar does not take --with-boxes")
cli_case("--bands for mstar", MSTAR + ["--bands", "VV,VH"], "mstar does not take --bands")
cli_case("--class-names missing", MSTAR + ["--class-names", "{tmp}/names.yaml"],
         r"names\.yaml: --class-names: unreadable YAML/JSON \(FileNotFoundError")
cli_case("--class-names not YAML", MSTAR + ["--class-names", "{tmp}/names.yaml"],
         r"names\.yaml: --class-names: unreadable YAML/JSON \(\w*Error", {"names.yaml": "a: [b\n c: {"})
cli_case("--class-names a list", MSTAR + ["--class-names", "{tmp}/names.yaml"],
         r"names\.yaml: --class-names: expected a mapping", {"names.yaml": "- T72\n"})
cli_case("--class-names a bad value", MSTAR + ["--class-names", "{tmp}/names.yaml"],
         r"class_names .*TypeError", {"names.yaml": "T72: [1, 2]\n"})
cli_case("--fluency-check without colon", MSTAR + ["--fluency-check", "sorted"],
         "--fluency-check must look like 'package.module:function'")
cli_case("--fluency-check unknown module", MSTAR + ["--fluency-check", "no_such_module:f"],
         r"--fluency-check no_such_module:f: cannot import it \(ModuleNotFoundError")
cli_case("--fluency-check unknown function", MSTAR + ["--fluency-check", "os:no_such_function"],
         r"--fluency-check os:no_such_function: cannot import it \(AttributeError")
cli_case("push a missing folder", ["push", "{tmp}/nowhere", "me/data"],
         r"nowhere: not a built dataset folder \(no README\.md\)")
cli_case("push to a bad repo id", ["push", "{tmp}/built", "me/a/b"], "Repo id must be in the form")
cli_case("push without a repo", ["push", "{tmp}/built"], "the following arguments are required: repo")


# --- the corpus ------------------------------------------------------------------------------------------------------
def _leftovers(tmp: Path) -> list[str]:
    return sorted(p.name for p in tmp.iterdir() if p.name.startswith((".tmp-", ".old-")))


@pytest.mark.parametrize(("run", "expect"), CASES)
def test_bad_input(run, expect, tmp_path):
    if isinstance(expect, Cli):
        code, stderr = run(tmp_path)
        assert code == 2 and "Traceback" not in stderr, stderr
        assert re.search(r"^(usage: (.|\n)*)?(python -m dataset_scripts[\w ]*: )?error: ", stderr), stderr
        assert re.search(expect.pattern, stderr), stderr
        assert not (tmp_path / "out").exists() and not _leftovers(tmp_path)
        return
    try:
        result = run(tmp_path)
    except USER_ERRORS as err:  # anything else is a raw traceback: it fails the case
        assert isinstance(expect, Error), f"unexpected error: {err}"
        assert re.search(expect.pattern, str(err)), str(err)
        assert not (tmp_path / "out").exists() and not _leftovers(tmp_path)
        return
    assert isinstance(expect, Entry), f"silently accepted: {result}"
    entries = [f"{path}: {text}" for path, text in getattr(result, expect.section)]
    assert any(re.search(expect.pattern, entry) for entry in entries), result.summary()
    card = (tmp_path / "out" / "README.md").read_text()
    assert f"- {CARD_LABELS[expect.section]}: {len(entries)}" in card
    assert str(tmp_path) not in card and "/etc/" not in card  # no absolute local path in a dataset card
    assert not _leftovers(tmp_path)


def test_the_corpus_is_large_and_covers_every_group():
    groups = {param.id.split(":")[0] for param in CASES}
    assert len(CASES) >= 200
    assert groups == {"image", "tiff", "csv", "coco", "voc", "mstar_raw", "mstar", "opensarship", "sarclip_mix",
                      "loader", "options"}


# --- exit codes and tracebacks of the real command -------------------------------------------------------------------
def _cli(repo_root, *args, env=None):
    return subprocess.run([sys.executable, "-m", "dataset_scripts", *map(str, args)], cwd=repo_root, text=True,
                          capture_output=True, timeout=300, env=env)


def test_command_line_errors_exit_2_without_traceback_unless_debug(tmp_path, repo_root):
    result = _cli(repo_root, "--debug", "build", "synthetic", "--out", tmp_path / "o", "--max-items", "-1")
    assert result.returncode == 1 and "Traceback" in result.stderr and "ValueError: max_items" in result.stderr
    (tmp_path / "table.csv").write_text('filepath,title\n"a.png,unbalanced\n')
    result = _cli(repo_root, "build", "csv", "--source", tmp_path / "table.csv", "--out", tmp_path / "o")
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert result.stderr.startswith(f"error: {tmp_path / 'table.csv'}: line 2: malformed CSV: unexpected end of data")
    assert not (tmp_path / "o").exists()


def test_push_without_network_is_a_clear_error(tmp_path, repo_root):
    build_dataset("synthetic", None, tmp_path / "built", num_train=2, num_test=1, image_size=32)
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "HF_TOKEN": "hf_dummy"}
    result = _cli(repo_root, "push", tmp_path / "built", "me/sar-data", env=env)
    assert result.returncode == 2 and "Traceback" not in result.stderr, result.stderr
    assert result.stderr.startswith(f"error: cannot push {tmp_path / 'built'} to the Hub repo me/sar-data")
    assert "the folder itself is complete" in result.stderr
