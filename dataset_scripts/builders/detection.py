"""Shared part of the detection builders: an annotated image -> image, boxes and SARCLIP-1M detection captions."""

from __future__ import annotations

import functools

import datasets

from ..captions import ClassName, detection_captions
from ..errors import DatasetBuildError
from ..features import CAPTIONS, boxes_feature
from ..readers import AnnotatedImage, read_image_file
from .base import Item, SarBuilder


class DetectionBuilder(SarBuilder):
    """Subclasses list ``Item``s whose value is an ``AnnotatedImage`` whose boxes passed ``clipped``."""

    TASK = "detection"

    def clipped(self, annotated: AnnotatedImage) -> bool:
        """Clip the image's boxes to it (each clip reported as a repair); False, with the image skipped and reported,
        for a box that has no area or lies entirely outside."""
        try:
            annotated.clip_boxes(self.report)
        except DatasetBuildError as err:
            self.report.skip(err.path, err.problem)
            return False
        return True

    @functools.cached_property
    def categories(self) -> list[str]:
        return self.checked_class_names(
            (box.category, str(item.value.annotation_path)) for item in self.items for box in item.value.boxes)

    @functools.cached_property
    def caption_names(self) -> dict[str, ClassName]:
        return {category: self.class_table[category] for category in self.categories}

    def _features(self) -> datasets.Features:
        return datasets.Features({
            "image": datasets.Image(),
            "captions": CAPTIONS,
            "boxes": boxes_feature(self.categories),
            "source": datasets.Value("string"),
            "split": datasets.Value("string"),
            "width": datasets.Value("int32"),
            "height": datasets.Value("int32"),
            "file": datasets.Value("string"),
        })

    def _example(self, item: Item) -> dict:
        annotated: AnnotatedImage = item.value
        image = read_image_file(annotated.image_path)
        if (image.width, image.height) != (annotated.width, annotated.height):
            raise DatasetBuildError(annotated.annotation_path, f"{annotated.image_path.name}: annotated size "
                                    f"{annotated.width}x{annotated.height}, image is {image.width}x{image.height}")
        boxes = [(tuple(box.xyxy), box.category) for box in annotated.boxes]
        return {
            "image": {"bytes": image.data, "path": annotated.image_path.name},
            "captions": detection_captions(boxes, image.width, image.height, self.caption_names, item.key,
                                           self.config.seed),
            "boxes": [{"bbox": box.xyxy, "category": box.category} for box in annotated.boxes],
            "source": self.SOURCE,
            "split": item.split,
            "width": image.width,
            "height": image.height,
            "file": item.key,
        }
