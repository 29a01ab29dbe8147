"""Pascal VOC xml (SAR-AIRcraft, SSDD style): one ``<annotation>`` per image, ``<bndbox>`` xmin/ymin/xmax/ymax.

Coordinates are used as pixel xyxy without the classic VOC 1-based shift, matching the COCO exports that these
SAR datasets ship (e.g. SAR-AIRcraft-1.0: COCO w = xmax - xmin).
"""

from __future__ import annotations

import math
import xml.etree.ElementTree as ET
from pathlib import Path

from ..errors import DatasetBuildError
from .boxes import AnnotatedImage, Box
from .image_file import IMAGE_SUFFIXES
from .paths import check_inside


def _float(xml_path: Path, element: ET.Element, field: str) -> float:
    text = element.findtext(field)
    try:
        return float(text)
    except (TypeError, ValueError) as err:
        raise DatasetBuildError(xml_path, f"<{field}> is missing or not a number: {text!r}") from err


def _size(xml_path: Path, size: ET.Element, field: str) -> int:
    value = _float(xml_path, size, field)
    if not (math.isfinite(value) and value >= 1):
        raise DatasetBuildError(xml_path, f"<size><{field}> must be a positive number, got {value}")
    return int(value)


def read_voc(xml_path: str | Path, image_dir: str | Path, inside: Path | None = None) -> AnnotatedImage:
    """Read one VOC annotation; the image is ``image_dir/<filename>`` (or ``<xml stem>.<image suffix>``), which must
    lie in the folder ``inside`` when that is given."""
    xml_path, image_dir = Path(xml_path), Path(image_dir)
    try:
        root = ET.parse(xml_path).getroot()
    except (ET.ParseError, OSError) as err:
        raise DatasetBuildError(xml_path, f"malformed VOC xml ({err})") from err
    size = root.find("size")
    if size is None:
        raise DatasetBuildError(xml_path, "no <size> element")
    width, height = _size(xml_path, size, "width"), _size(xml_path, size, "height")
    boxes = []
    for obj in root.iter("object"):
        name = (obj.findtext("name") or "").strip()
        bndbox = obj.find("bndbox")
        if not name or bndbox is None:
            raise DatasetBuildError(xml_path, "an <object> lacks <name> or <bndbox>")
        boxes.append(Box(*(_float(xml_path, bndbox, f) for f in ("xmin", "ymin", "xmax", "ymax")), category=name))
    filename = (root.findtext("filename") or "").strip()
    image_path = image_dir / filename
    if not filename or not image_path.exists():
        candidates = [image_dir / (xml_path.stem + suffix) for suffix in IMAGE_SUFFIXES]
        image_path = next((p for p in candidates if p.exists()), image_path)
    check_inside(image_path, inside, xml_path, f"<filename> {filename!r}")
    return AnnotatedImage(image_path, xml_path, width, height, boxes)
