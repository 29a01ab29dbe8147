"""Streaming training data for corpora that do not fit in memory (SARCLIP-1M size and beyond).

`StreamingPairs` reads a dataset folder's parquet shards as a `datasets` streaming `IterableDataset`, gives each
process its part with `datasets.distributed.split_dataset_by_node` (whole shards when the shard count divides by the
number of processes, else every world_size-th example), shuffles the shard order and a buffer of examples anew each
epoch, and yields whole batches for the collator. Shards are read one after the other, so memory is one parquet row
group plus the shuffle buffer and a batch, whatever the corpus size. (`IterableDataset.shuffle` would instead read
every row group of every shard at once, interleaved: memory grows with the corpus, ~0.8 GB more at 1.7M pairs.)

Exact resume: the order depends only on (files, seed, epoch, rank, world size, batch size), and `set_epoch(epoch,
batches_done)` starts an epoch after its first `batches_done` batches: the batches that follow are the ones an
uninterrupted run would have seen (skipped examples are read, not decoded). The trainer's `TrainerState` (epoch,
batches_in_epoch) is the whole resume position.

DataLoader workers: worker w of W yields batches w, w + W, ... of the process's stream and `DataLoader(batch_size=None)`
takes them round-robin, so the batch order is the same for any number of workers. Each worker reads (not decodes)
the process's whole stream; decoding and collating (preprocessing), the costly part, are split. The position lives
in shared memory and the collator is given the epoch where it runs, so `set_epoch` also reaches persistent workers.
"""

from __future__ import annotations

import itertools
import re
from collections.abc import Iterator, Sequence
from pathlib import Path

import datasets
import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import torch
from datasets.distributed import split_dataset_by_node

COLUMNS = ("image", "captions", "label")
READ_BATCH = 256  # rows converted from Arrow at a time


def parquet_shards(data: str | Path, split: str = "train") -> list[str]:
    """The parquet shards of `split` in a dataset folder (`data/<split>-NNNNN-of-NNNNN.parquet`), in order."""
    files = sorted(str(p) for p in Path(data).glob(f"data/{split}-*.parquet"))
    if not files:
        raise FileNotFoundError(f"{data}: no parquet shards data/{split}-*.parquet (streaming reads a dataset folder "
                                "of parquet shards, as `python -m dataset_scripts build` writes; for other data set "
                                "streaming: false)")
    # shards named NNNNN-of-TOTAL say how many there are: a missing one would silently train on part of the split
    numbered = [re.fullmatch(rf"{re.escape(split)}-(\d+)-of-(\d+)\.parquet", Path(f).name) for f in files]
    if numbered and all(numbered):
        totals = {int(m[2]) for m in numbered}
        expected = {f"{split}-{i:05d}-of-{total:05d}.parquet" for total in totals for i in range(total)}
        if missing := sorted(expected - {Path(f).name for f in files}):
            raise FileNotFoundError(f"{data}: shards of split {split!r} are missing: data/{', data/'.join(missing[:5])}"
                                    f"{' ...' if len(missing) > 5 else ''} ({len(missing)} of {max(totals)}); "
                                    "restore them or rebuild the dataset")
    return files


def shard_schema(data_files: Sequence[str]) -> pa.Schema:
    """The schema every shard shares, read from their footers before any training: a shard without an `image` column
    or with other columns or types than the first would otherwise fail (or feed other data) in the middle of an
    epoch; the error names it."""
    first = pq.read_schema(data_files[0])
    if "image" not in first.names:
        raise ValueError(f"{data_files[0]}: no 'image' column (columns: {first.names}); streaming trains on image "
                         "shards as `python -m dataset_scripts build` writes them")
    for path in data_files[1:]:
        schema = pq.read_schema(path)
        if not schema.remove_metadata().equals(first.remove_metadata()):
            differ = sorted(set(map(str, schema)) ^ set(map(str, first)))
            raise ValueError(f"{path}: its columns differ from {Path(data_files[0]).name}'s ({'; '.join(differ[:4])}); "
                             "the shards of one split must share one schema: rebuild or remove the odd shard")
    return first


def rows_per_process(shard_rows: Sequence[int], world_size: int) -> int:
    """The fewest examples any process gets from `split_dataset_by_node` in any epoch (shard order is shuffled per
    epoch): its smallest shards when the shard count divides by `world_size`, else every world_size-th example."""
    if len(shard_rows) % world_size == 0:
        return sum(sorted(shard_rows)[: len(shard_rows) // world_size])
    return sum(shard_rows) // world_size


class StreamingPairs(torch.utils.data.IterableDataset):
    """This process's training batches from parquet shards: `collate_fn` of lists of example dicts (images decoded,
    `__index__` added, and `__source__`: the file name stored with the image, for error messages).

    Args:
        data_files: parquet shards (`parquet_shards(folder)`).
        batch_size: examples per batch (per process).
        collate_fn: applied to each batch where it is made (e.g. `ImageTextCollator`, whose `epoch` is set to the
            stream's epoch first); None yields the example lists.
        seed: shuffle seed (the same on every process).
        rank, world_size: this process and the number of processes.
        shuffle_buffer: examples in the shuffle buffer (memory: this many encoded images per worker).
        columns: the columns read (those present).

    Every process yields `len(self)` batches per epoch (the same count on all processes; the few examples beyond
    the last full batch are dropped, like `drop_last`). `__index__` is the example's position in this process's
    epoch stream (the collator seeds its caption choice with it).
    """

    def __init__(self, data_files: Sequence[str], batch_size: int, collate_fn=None, seed: int = 0, rank: int = 0,
                 world_size: int = 1, shuffle_buffer: int = 2048, columns: Sequence[str] = COLUMNS):
        self.data_files = list(data_files)
        self.batch_size = batch_size
        self.collate_fn = collate_fn
        self.seed, self.rank, self.world_size = seed, rank, world_size
        self.shuffle_buffer = shuffle_buffer
        schema = shard_schema(self.data_files)
        self.columns = [c for c in columns if c in schema.names]
        # the datasets features (Image, ClassLabel) stored in the shards: decoding, and e.g. the loss's grouping
        self.features = datasets.Features({c: datasets.Features.from_arrow_schema(schema)[c] for c in self.columns})
        rows = rows_per_process([pq.read_metadata(f).num_rows for f in self.data_files], world_size)
        self.batches_per_epoch = rows // batch_size
        if self.batches_per_epoch == 0:
            raise ValueError(f"{rows} examples per process give no batch of {batch_size} "
                             f"({len(self.data_files)} shards, {world_size} processes)")
        self._position = torch.zeros(2, dtype=torch.long).share_memory_()  # epoch, batches already done

    def __len__(self) -> int:
        return self.batches_per_epoch

    def set_epoch(self, epoch: int, batches_done: int = 0) -> None:
        """Start `epoch` after its first `batches_done` batches (0: from the start)."""
        if not 0 <= batches_done <= self.batches_per_epoch:
            raise ValueError(f"batches_done must be in 0..{self.batches_per_epoch}, got {batches_done}")
        self._position[0], self._position[1] = epoch, batches_done

    def stream(self, epoch: int) -> datasets.IterableDataset:
        """This process's part of the corpus for `epoch`, shards in a seeded order (images not decoded)."""
        order = np.random.default_rng((self.seed, epoch)).permutation(len(self.data_files))
        files = [self.data_files[i] for i in order]  # the same order on every process: disjoint parts
        dataset = datasets.load_dataset("parquet", data_files=files, split="train", streaming=True)
        dataset = dataset.select_columns(self.columns)
        return split_dataset_by_node(dataset.decode(False), self.rank, self.world_size)

    def examples(self, epoch: int) -> Iterator[dict]:
        """The shuffled examples of `epoch`: a buffer of `shuffle_buffer` examples, one drawn as each new one
        arrives (seeded by seed, epoch and rank)."""
        rng = np.random.default_rng((self.seed, epoch, self.rank))
        buffer = []
        # `.iter()`, unlike `iter()`, does not split the stream among DataLoader workers: each worker sees it whole
        for columns in self.stream(epoch).iter(READ_BATCH):
            for values in zip(*columns.values()):
                buffer.append(dict(zip(columns, values)))
                if len(buffer) > self.shuffle_buffer:
                    i = rng.integers(len(buffer))
                    buffer[i], buffer[-1] = buffer[-1], buffer[i]
                    yield buffer.pop()
        rng.shuffle(buffer)
        yield from buffer

    def __iter__(self) -> Iterator:
        epoch, done = self._position.tolist()
        info = torch.utils.data.get_worker_info()
        worker, workers = (info.id, info.num_workers) if info is not None else (0, 1)
        if hasattr(self.collate_fn, "epoch"):
            self.collate_fn.epoch = epoch  # this process's copy (a persistent worker's too)
        examples = self.examples(epoch)
        batches = iter(lambda: list(itertools.islice(examples, self.batch_size)), [])
        for number, batch in enumerate(itertools.islice(batches, done, self.batches_per_epoch), start=done):
            if (number - done) % workers == worker:
                start = number * self.batch_size
                batch = [{**self.features.decode_example(example), "__index__": start + i,
                          "__source__": _stored_name(example)} for i, example in enumerate(batch)]
                yield batch if self.collate_fn is None else self.collate_fn(batch)


def _stored_name(example: dict) -> str | None:
    """The file name a datasets Image cell keeps beside its bytes (for error messages), if any."""
    image = example.get("image")
    return image.get("path") if isinstance(image, dict) else None


__all__ = ["StreamingPairs", "parquet_shards", "rows_per_process"]
