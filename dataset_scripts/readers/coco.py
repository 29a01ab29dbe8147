"""COCO detection json (HRSID, SSDD, SARDet-100K, SAR-AIRcraft exports): ``bbox`` is [x, y, w, h] in pixels."""

from __future__ import annotations

import json
from pathlib import Path

from ..errors import DatasetBuildError
from .boxes import AnnotatedImage, Box
from .paths import check_inside


def _image_path(json_path: Path, file_name: str) -> Path:
    """``file_name`` relative to the json folder, else the basename inside ``images/`` beside the json."""
    direct = json_path.parent / file_name
    return direct if direct.exists() else json_path.parent / "images" / Path(file_name).name


def _objects(json_path: Path, coco: dict, key: str, required: bool = True) -> list[dict]:
    """``coco[key]``: a list of json objects, else DatasetBuildError naming the entry."""
    if key not in coco and not required:
        return []
    entries = coco.get(key)
    if not isinstance(entries, list):
        raise DatasetBuildError(json_path, f"'{key}' must be a list, got {type(entries).__name__}")
    for index, entry in enumerate(entries):
        if not isinstance(entry, dict):
            raise DatasetBuildError(json_path, f"{key}[{index}] is {type(entry).__name__} {entry!r:.60}, not an "
                                    "object")
    return entries


def _fields(json_path: Path, where: str, parse):
    """``parse()``, its KeyError/TypeError/ValueError as a DatasetBuildError naming the json and the entry."""
    try:
        return parse()
    except (KeyError, TypeError, ValueError) as err:
        raise DatasetBuildError(json_path, f"{where} is malformed ({type(err).__name__}: {err})") from err


def _annotation(ann: dict) -> tuple[int, int, tuple[float, float, float, float]]:
    x, y, w, h = (float(v) for v in ann["bbox"])
    return int(ann["image_id"]), int(ann["category_id"]), (x, y, x + w, y + h)


def read_coco(json_path: str | Path, inside: Path | None = None) -> tuple[list[str], list[AnnotatedImage]]:
    """Return (category names in id order, images with their boxes).

    Structural problems raise DatasetBuildError naming the json file: bad json, missing keys, entries that are not
    objects, two images with one id or one file (one picture would carry another's boxes), annotations of unknown
    images or categories, and (when ``inside`` is given) image files outside that folder. Box geometry is checked
    per image by ``AnnotatedImage.clip_boxes``.
    """
    json_path = Path(json_path)
    try:
        coco = json.loads(json_path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as err:
        raise DatasetBuildError(json_path, f"not a valid COCO detection file ({type(err).__name__}: {err})") from err
    if not isinstance(coco, dict):
        raise DatasetBuildError(json_path, f"a COCO file is a json object, got {type(coco).__name__}")
    entries = _objects(json_path, coco, "categories")
    categories = dict(_fields(json_path, f"categories[{index}]", lambda: (int(c["id"]), str(c["name"])))
                      for index, c in enumerate(entries))
    if len(categories) != len(entries):
        raise DatasetBuildError(json_path, "two categories share an id: give each category its own id")
    images: dict[int, AnnotatedImage] = {}
    by_file: dict[Path, int] = {}
    for index, im in enumerate(_objects(json_path, coco, "images")):
        image_id, file_name, width, height = _fields(
            json_path, f"images[{index}]", lambda: (int(im["id"]), str(im["file_name"]), int(im["width"]),
                                                    int(im["height"])))
        path = check_inside(_image_path(json_path, file_name), inside, json_path,
                            f"image {image_id} file_name {file_name!r}")
        if image_id in images:
            raise DatasetBuildError(json_path, f"image id {image_id} is used twice ({images[image_id].image_path.name}"
                                    f" and {path.name}): give each image its own id")
        if path in by_file:
            raise DatasetBuildError(json_path, f"images {by_file[path]} and {image_id} are one file {path.name} (one "
                                    "picture would carry the other's boxes): merge them or fix file_name")
        images[image_id] = AnnotatedImage(path, json_path, width, height, [])
        by_file[path] = image_id
    for index, ann in enumerate(_objects(json_path, coco, "annotations", required=False)):
        where = f"annotation {ann.get('id', f'[{index}]')}"
        image_id, category_id, xyxy = _fields(json_path, where, lambda: _annotation(ann))
        if image_id not in images:
            raise DatasetBuildError(json_path, f"{where} refers to unknown image id {image_id}")
        if category_id not in categories:
            raise DatasetBuildError(json_path, f"{where} has unknown category id {category_id}")
        images[image_id].boxes.append(Box(*xyxy, categories[category_id]))
    names = [categories[i] for i in sorted(categories)]
    return names, [images[i] for i in sorted(images)]
