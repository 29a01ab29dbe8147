"""Image-text training data: load a `DatasetDict`, order it per epoch and turn examples into model batches."""

from __future__ import annotations

import random

import datasets
import numpy as np
import torch
from torch.utils.data import Sampler

from dataset_scripts.loading import load_image_text_data

from .config import TrainConfig

def load_image_text_dataset(config: TrainConfig) -> datasets.DatasetDict:
    """`config.data` (`dataset_scripts.loading.load_image_text_data`) -> DatasetDict whose splits have an `image`
    column and a `captions` (list of str) column."""
    from dataset_scripts import synthetic_dataset

    def synthetic() -> datasets.DatasetDict:
        return synthetic_dataset(num_train=config.synthetic_num_train, num_test=config.synthetic_num_test,
                                 image_size=config.synthetic_image_size, seed=config.seed)

    dataset = load_image_text_data(config.data, synthetic, config.csv_image_key, config.csv_caption_key)
    return with_captions_column(dataset, config.data)


def with_captions_column(dataset: datasets.DatasetDict, source: str) -> datasets.DatasetDict:
    """Check the columns; a single `caption` string column becomes a one-element `captions` list."""
    for split, ds in dataset.items():
        if "image" not in ds.column_names:
            raise ValueError(f"{source}: split {split!r} has no 'image' column (columns: {ds.column_names})")
        if "captions" not in ds.column_names:
            if "caption" not in ds.column_names:
                raise ValueError(f"{source}: split {split!r} has no 'captions' or 'caption' column")
            dataset[split] = ds.map(lambda ex: {"captions": [ex["caption"]]}, remove_columns=["caption"])
    return dataset


class EpochShuffleSampler(Sampler[int]):
    """A permutation that depends only on (seed, epoch): the data order of a resumed run equals the original one."""

    def __init__(self, num_samples: int, seed: int):
        self.num_samples = num_samples
        self.seed = seed
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def __iter__(self):
        return iter(np.random.default_rng((self.seed, self.epoch)).permutation(self.num_samples).tolist())

    def __len__(self) -> int:
        return self.num_samples


class ImageTextCollator:
    """Examples -> `{"pixel_values", "input_ids"}`; one of each image's captions, chosen by (seed, epoch, index).

    The choice does not use the global RNG, so a resumed run sees the same captions as an uninterrupted one.
    Examples must carry `__index__` (added by `training_view`).
    """

    def __init__(self, processor, seed: int):
        self.processor = processor
        self.seed = seed
        self.epoch = 0

    def caption_for(self, example: dict) -> str:
        captions = example["captions"]
        if isinstance(captions, str):
            return captions
        if not captions:
            raise ValueError(f"example {example['__index__']} has no caption")
        return random.Random(f"{self.seed}/{self.epoch}/{example['__index__']}").choice(captions)

    def __call__(self, examples: list[dict]) -> dict[str, torch.Tensor]:
        texts = [self.caption_for(example) for example in examples]
        batch = self.processor(images=[example["image"] for example in examples], text=texts)
        return {"pixel_values": batch["pixel_values"], "input_ids": batch["input_ids"]}


def training_view(dataset: datasets.Dataset) -> datasets.Dataset:
    """Only the columns training reads, plus the row number as `__index__` (used to pick captions)."""
    dataset = dataset.select_columns(["image", "captions"])
    return dataset.add_column("__index__", list(range(len(dataset))))
