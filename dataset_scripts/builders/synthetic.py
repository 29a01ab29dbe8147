"""The synthetic SAR set as a builder (for the CLI and parquet export); ``synthetic_dataset`` is the in-memory twin;
``write_synthetic_corpus`` writes it at SARCLIP-1M size (sharded parquet, several processes)."""

from __future__ import annotations

import concurrent.futures
import dataclasses
import functools
import shutil
from pathlib import Path

import datasets
import pyarrow.parquet as pq

from sar_utils.atomic import disk_full_error, reap_leftovers, replace_folder, staging_folder
from ..captions import CAPTIONS_PER_IMAGE
from ..cards import dataset_card
from ..synthetic import SyntheticSarGenerator, synthetic_example, synthetic_features
from .base import Item, SarBuilder, SarBuilderConfig

PARQUET_ROW_GROUP_SIZE = 100  # rows read at a time when streaming: small, as images are large


@dataclasses.dataclass
class SyntheticConfig(SarBuilderConfig):
    num_train: int = 1000
    num_test: int = 200
    image_size: int = 128
    looks: float = 3.0
    with_boxes: bool = False

    def __post_init__(self):
        super().__post_init__()
        if self.num_train < 1 or self.num_test < 0:
            raise ValueError(f"num_train (--num-train) must be at least 1 and num_test (--num-test) at least 0, got "
                             f"{self.num_train} and {self.num_test}")
        if not self.looks > 0:
            raise ValueError(f"looks (--looks) must be positive, got {self.looks}")
        SyntheticSarGenerator(self.image_size, self.looks, self.seed, self.with_boxes)  # checks image_size


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


def write_synthetic_corpus(
    out_dir: str | Path, num_pairs: int, image_size: int = 64, num_shards: int = 64, num_proc: int = 1,
    seed: int = 0, looks: float = 3.0, overwrite: bool = False,
) -> Path:
    """A SARCLIP-1M-size synthetic training corpus, for scale runs: ``ceil(num_pairs / 5)`` chips with 5 captions
    each (SARCLIP-1M counts one pair per caption) as ``num_shards`` parquet shards ``data/train-NNNNN-of-NNNNN.parquet``
    of equal size, written by ``num_proc`` processes in parallel, plus a README card; ``load_dataset(out_dir)`` (or
    streaming, ``train.sarclip.streaming``) reads it.

    Shard s holds train chips ``[s * n // num_shards, (s + 1) * n // num_shards)``, the same chips as the builder's
    train split for the same seed and size: the content does not depend on ``num_proc``. Each process holds one
    shard at a time (memory stays flat as the corpus grows). The folder is written atomically like every dataset
    folder here. A shard count that divides the number of training processes gives each process whole shards.
    """

    out = Path(out_dir)
    reap_leftovers(out)
    if out.exists() and any(out.iterdir()) and not overwrite:
        raise FileExistsError(f"{out} is not empty (pass overwrite=True)")
    num_images = -(-num_pairs // CAPTIONS_PER_IMAGE)
    if not 1 <= num_shards <= num_images:
        raise ValueError(f"num_shards must be in 1..{num_images} (the number of chips), got {num_shards}")
    with disk_full_error(out):
        staging = staging_folder(out)
        try:
            (staging / "data").mkdir()
            jobs = [(staging / "data" / f"train-{s:05d}-of-{num_shards:05d}.parquet", s * num_images // num_shards,
                     (s + 1) * num_images // num_shards, image_size, looks, seed) for s in range(num_shards)]
            if num_proc > 1:
                with concurrent.futures.ProcessPoolExecutor(num_proc) as pool:  # workers: numpy, PIL, pyarrow only
                    list(pool.map(_write_shard, jobs))
            else:
                for job in jobs:
                    _write_shard(job)
            _write_card(staging, num_images, image_size, looks, seed)
            replace_folder(staging, out)
        finally:
            shutil.rmtree(staging, ignore_errors=True)
    return out


def _write_shard(job) -> None:
    path, start, stop, image_size, looks, seed = job
    generator = SyntheticSarGenerator(image_size, looks, seed)
    features = synthetic_features(with_boxes=False)
    rows = [synthetic_example(generator.chip(i, 0), "train", i, with_boxes=False) for i in range(start, stop)]
    columns = {name: [row[name] for row in rows] for name in features}
    table = datasets.Dataset.from_dict(columns, features=features).data.table  # schema metadata holds the features
    pq.write_table(table, path, row_group_size=PARQUET_ROW_GROUP_SIZE)


def _write_card(folder: Path, num_images: int, image_size: int, looks: float, seed: int) -> None:
    body = (f"{SyntheticBuilder.DESCRIPTION}\n\n{num_images} chips of {image_size} x {image_size} px ({looks} looks, "
            f"seed {seed}), {CAPTIONS_PER_IMAGE} captions each: {num_images * CAPTIONS_PER_IMAGE} image-text pairs. "
            "Written by `dataset_scripts.builders.synthetic.write_synthetic_corpus`.\n")
    card = dataset_card("Synthetic SAR image-text corpus", body, ["zero-shot-image-classification", "image-to-text"],
                        tags=("synthetic", "image-text", "clip"), license=SyntheticBuilder.LICENSE, rows=num_images,
                        splits=["train"])
    card.save(folder / "README.md")
