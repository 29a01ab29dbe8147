"""Annotated boxes shared by the COCO and VOC readers (pixel xyxy, category name), checked and clipped to the image."""

from __future__ import annotations

import dataclasses
from pathlib import Path

from ..errors import DatasetBuildError
from ..report import BuildReport


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

    def clip_boxes(self, report: BuildReport) -> None:
        """Clip boxes reaching outside the annotated image to it, each clip recorded in ``report`` as a repair.
        DatasetBuildError (naming the annotation file and the image) for a box without area, or entirely outside."""
        size, clipped = f"{self.width}x{self.height}", []
        for box in self.boxes:
            where = f"{self.image_path.name}: box {box.xyxy} ({box.category})"
            if not (box.x1 > box.x0 and box.y1 > box.y0):
                raise DatasetBuildError(self.annotation_path, f"{where} has no area")
            inner = Box(max(box.x0, 0), max(box.y0, 0), min(box.x1, self.width), min(box.y1, self.height),
                        box.category)
            if not (inner.x1 > inner.x0 and inner.y1 > inner.y0):
                raise DatasetBuildError(self.annotation_path, f"{where} lies outside the {size} image")
            if inner != box:
                report.repair(str(self.annotation_path), f"{where} clipped to the {size} image: {inner.xyxy}")
            clipped.append(inner)
        self.boxes = clipped
