"""Annotated boxes shared by the COCO and VOC readers (pixel xyxy, category name) and their checks."""

from __future__ import annotations

import dataclasses
from pathlib import Path

from ..errors import DatasetBuildError


@dataclasses.dataclass(frozen=True)
class Box:
    x0: float
    y0: float
    x1: float
    y1: float
    category: str

    @property
    def xyxy(self) -> list[float]:
        return [self.x0, self.y0, self.x1, self.y1]


@dataclasses.dataclass
class AnnotatedImage:
    """One image of a detection set: where it is, the size the annotation file claims, and its boxes."""

    image_path: Path
    annotation_path: Path  # the file to name in errors
    width: int
    height: int
    boxes: list[Box]

    def check_boxes(self) -> None:
        """Raise DatasetBuildError (naming the annotation file and the image) for empty or out-of-image boxes."""
        for box in self.boxes:
            where = f"{self.image_path.name}: box {box.xyxy} ({box.category})"
            if not (box.x1 > box.x0 and box.y1 > box.y0):
                raise DatasetBuildError(self.annotation_path, f"{where} has no area")
            if box.x0 < 0 or box.y0 < 0 or box.x1 > self.width or box.y1 > self.height:
                raise DatasetBuildError(
                    self.annotation_path, f"{where} lies outside the {self.width}x{self.height} image")
