"""Pascal VOC folders -> image + boxes + captions.

Layout: annotations in ``Annotations/``, ``annotations_voc/`` or ``annotations/``; images in ``JPEGImages/`` or
``images/``; splits from ``ImageSets/Main/{train,val,test}.txt`` when present, else a seeded hash of the file stem.
"""

from __future__ import annotations

from pathlib import Path

from ..errors import DatasetBuildError
from ..readers import read_voc
from ..splits import hash_split
from .base import Item
from .detection import DetectionBuilder

ANNOTATION_DIRS = ("Annotations", "annotations_voc", "annotations")
IMAGE_DIRS = ("JPEGImages", "images")


def _first_dir(root: Path, names: tuple[str, ...], what: str) -> Path:
    for name in names:
        if (root / name).is_dir():
            return root / name
    raise DatasetBuildError(root, f"no {what} folder (looked for {', '.join(names)})")


class VocDetectionBuilder(DetectionBuilder):
    SOURCE = "voc_det"
    DESCRIPTION = ("SAR detection images with Pascal VOC boxes (SAR-AIRcraft, SSDD style); VOC coordinates are "
                   "used as pixel xyxy without a 1-based shift.")

    def _list_items(self) -> list[Item]:
        root = Path(self.config.data_dir)
        annotation_dir = _first_dir(root, ANNOTATION_DIRS, "annotation")
        image_dir = _first_dir(root, IMAGE_DIRS, "image")
        split_of = {}
        for name, split in (("train", "train"), ("val", "validation"), ("test", "test")):
            split_file = root / "ImageSets" / "Main" / f"{name}.txt"
            if split_file.is_file():
                lines = split_file.read_text().splitlines()
                split_of.update((line.split()[0], split) for line in lines if line.strip())
        items = []
        for xml_path in sorted(annotation_dir.glob("*.xml")):
            stem = xml_path.stem
            if split_of and stem not in split_of:
                self.report.ignore(str(xml_path), "not listed in any ImageSets/Main/<split>.txt")
                continue
            try:
                annotated = read_voc(xml_path, image_dir, self.allowed_root)
            except DatasetBuildError as err:
                self.report.skip(err.path, err.problem)
                continue
            if not self.clipped(annotated):
                continue
            split = split_of.get(stem) or hash_split(stem, self.config.seed, self.config.test_fraction)
            items.append(Item(split, xml_path.relative_to(root).as_posix(), annotated))
        return items
