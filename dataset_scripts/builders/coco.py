"""COCO detection json(s) -> image + boxes + captions. ``data_dir`` is a json file or a folder of json files."""

from __future__ import annotations

import os
import re
from pathlib import Path

from ..errors import DatasetBuildError
from ..readers import read_coco
from ..splits import hash_split
from .base import Item
from .detection import DetectionBuilder

SPLIT_IN_NAME = re.compile(r"(train|val|test)", re.IGNORECASE)
SPLIT_NAMES = {"train": "train", "val": "validation", "test": "test"}


class CocoDetectionBuilder(DetectionBuilder):
    SOURCE = "coco_det"
    DESCRIPTION = ("SAR detection images with COCO boxes (HRSID, SSDD, SARDet-100K style). Split from the json file "
                   "names (train/val/test); a single json is split by a seeded hash of the image file name.")

    def _list_items(self) -> list[Item]:
        source = Path(self.config.data_dir)
        files = [source] if source.is_file() else sorted(source.glob("*.json"))
        if not files:
            raise DatasetBuildError(source, "no COCO json file")
        items = []
        for json_path in files:
            _, images = read_coco(json_path, self.allowed_root)
            match = SPLIT_IN_NAME.search(json_path.stem) if len(files) > 1 else None
            if len(files) > 1 and match is None:
                raise DatasetBuildError(json_path, "several json files: each name must contain train, val or test")
            for image in filter(self.clipped, images):
                key = Path(os.path.relpath(image.image_path, json_path.parent)).as_posix()
                split = (SPLIT_NAMES[match[1].lower()] if match
                         else hash_split(key, self.config.seed, self.config.test_fraction))
                items.append(Item(split, key, image))
        return items
