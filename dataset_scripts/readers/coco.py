"""COCO detection json (HRSID, SSDD, SARDet-100K, SAR-AIRcraft exports): ``bbox`` is [x, y, w, h] in pixels."""

from __future__ import annotations

import json
from pathlib import Path

from ..errors import DatasetBuildError
from .boxes import AnnotatedImage, Box


def _image_path(json_path: Path, file_name: str) -> Path:
    """``file_name`` relative to the json folder, else the basename inside ``images/`` beside the json."""
    direct = json_path.parent / file_name
    return direct if direct.exists() else json_path.parent / "images" / Path(file_name).name


def read_coco(json_path: str | Path) -> tuple[list[str], list[AnnotatedImage]]:
    """Return (category names in id order, images with their boxes).

    Structural problems (bad json, missing keys, annotations of unknown images or categories) raise
    DatasetBuildError naming the json file. Box geometry is checked per image by ``AnnotatedImage.check_boxes``.
    """
    json_path = Path(json_path)
    try:
        coco = json.loads(json_path.read_text(encoding="utf-8"))
        categories = {int(c["id"]): str(c["name"]) for c in coco["categories"]}
        images = {
            int(im["id"]): AnnotatedImage(_image_path(json_path, im["file_name"]), json_path,
                                          int(im["width"]), int(im["height"]), [])
            for im in coco["images"]
        }
        annotations = coco.get("annotations", [])
    except (OSError, json.JSONDecodeError, KeyError, TypeError, ValueError) as err:
        raise DatasetBuildError(json_path, f"not a valid COCO detection file ({type(err).__name__}: {err})") from err
    for ann in annotations:
        try:
            image_id, category_id = int(ann["image_id"]), int(ann["category_id"])
            x, y, w, h = (float(v) for v in ann["bbox"])
        except (KeyError, TypeError, ValueError) as err:
            raise DatasetBuildError(json_path, f"annotation {ann.get('id')} is malformed ({err})") from err
        if image_id not in images:
            raise DatasetBuildError(json_path, f"annotation {ann.get('id')} refers to unknown image id {image_id}")
        if category_id not in categories:
            raise DatasetBuildError(json_path, f"annotation {ann.get('id')} has unknown category id {category_id}")
        images[image_id].boxes.append(Box(x, y, x + w, y + h, categories[category_id]))
    names = [categories[i] for i in sorted(categories)]
    return names, [images[i] for i in sorted(images)]
