"""The synthetic SAR set as a builder (for the CLI and parquet export); ``synthetic_dataset`` is the in-memory twin."""

from __future__ import annotations

import dataclasses
import functools

import datasets

from ..synthetic import SyntheticSarGenerator, synthetic_example, synthetic_features
from .base import Item, SarBuilder, SarBuilderConfig


@dataclasses.dataclass
class SyntheticConfig(SarBuilderConfig):
    num_train: int = 1000
    num_test: int = 200
    image_size: int = 128
    looks: float = 3.0
    with_boxes: bool = False


class SyntheticBuilder(SarBuilder):
    BUILDER_CONFIG_CLASS = SyntheticConfig
    SOURCE = "synthetic"
    LICENSE = "apache-2.0"
    DESCRIPTION = ("Synthetic SAR-like chips (Gamma speckle with L looks, sea/land/urban clutter, class-shaped "
                   "targets with radar shadows) of 5 classes: vehicle, ship, aircraft, storage tank, building.")

    @functools.cached_property
    def generator(self) -> SyntheticSarGenerator:
        config = self.config
        return SyntheticSarGenerator(config.image_size, config.looks, config.seed, config.with_boxes)

    def _list_items(self) -> list[Item]:
        return [Item(split, f"{split}/{index:07d}", (stream, index))
                for stream, (split, count) in enumerate((("train", self.config.num_train),
                                                         ("test", self.config.num_test)))
                for index in range(count)]

    def _features(self) -> datasets.Features:
        return synthetic_features(self.config.with_boxes)

    def _example(self, item: Item) -> dict:
        stream, index = item.value
        return synthetic_example(self.generator.chip(index, stream), item.split, index, self.config.with_boxes)
