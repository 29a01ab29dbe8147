"""Streaming training data: exact resume, any number of DataLoader workers, disjoint parts per process, and a sharded
synthetic corpus written by several processes."""

import hashlib

import datasets
import pytest
from torch.utils.data import DataLoader

from dataset_scripts.builders.synthetic import write_synthetic_corpus
from train.sarclip.streaming import StreamingPairs, parquet_shards, rows_per_process

BATCH = 4


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    """61 chips (305 pairs) in 4 shards of 15-16 rows, written by 2 processes."""
    out = tmp_path_factory.mktemp("corpus") / "synthetic"
    write_synthetic_corpus(out, num_pairs=303, image_size=32, num_shards=4, num_proc=2)
    return parquet_shards(out)


def _ids(batches):
    return [[hashlib.sha1(example["image"].tobytes()).hexdigest()[:12] for example in batch] for batch in batches]


class Collator:
    """Records the epoch it was told (as ImageTextCollator uses it for captions and augmentation)."""

    epoch = -1

    def __call__(self, batch):
        return [{**example, "epoch": self.epoch} for example in batch]


def _epoch(stream, epoch, batches_done=0, **loader):
    stream.set_epoch(epoch, batches_done)
    return _ids(DataLoader(stream, batch_size=None, **loader) if loader else stream)


def test_corpus_is_sharded_and_independent_of_num_proc(corpus, tmp_path):
    assert [f.rsplit("/", 1)[1] for f in corpus] == [f"train-{i:05d}-of-00004.parquet" for i in range(4)]
    single = write_synthetic_corpus(tmp_path / "single", num_pairs=303, image_size=32, num_shards=4, num_proc=1)
    for ours, theirs in zip(corpus, parquet_shards(single)):
        assert datasets.Dataset.from_parquet(ours)["captions"] == datasets.Dataset.from_parquet(theirs)["captions"]
    loaded = datasets.load_dataset(str(single.parent / "single"), split="train")
    assert len(loaded) == 61 and loaded.features["label"].names[0] == "vehicle"


def test_resume_gives_exactly_the_remaining_batches(corpus):
    stream = StreamingPairs(corpus, BATCH, seed=3, shuffle_buffer=8)
    epochs = [_epoch(stream, 0), _epoch(stream, 1)]
    assert len(stream) == 15 and [len(e) for e in epochs] == [15, 15]
    seen = [set(sum(epoch, [])) for epoch in epochs]
    assert epochs[0] != epochs[1] and len(seen[0]) == len(seen[1] & seen[0]) + 1 == 60  # reshuffled; 1 row dropped
    assert _epoch(stream, 0, batches_done=6) == epochs[0][6:]
    assert _epoch(stream, 1, batches_done=14) == epochs[1][14:]
    batch = next(iter(stream))
    assert [example["__index__"] for example in batch] == [56, 57, 58, 59]  # positions in the epoch's stream
    assert set(batch[0]) == {"image", "captions", "label", "__index__", "__source__"}


def test_dataloader_workers_keep_the_order_and_the_resume_position(corpus):
    stream = StreamingPairs(corpus, BATCH, Collator(), seed=3, shuffle_buffer=8)
    expected = _epoch(stream, 1)
    assert _epoch(stream, 1, num_workers=2) == expected
    loader = DataLoader(stream, batch_size=None, num_workers=2, persistent_workers=True)
    for epoch, done in ((1, 5), (1, 9), (0, 0)):
        stream.set_epoch(epoch, done)  # reaches the persistent workers through shared memory
        batches = list(loader)
        assert {example["epoch"] for batch in batches for example in batch} == {epoch}
        assert _ids(batches) == (expected[done:] if epoch == 1 else _epoch(stream, 0))


@pytest.mark.parametrize("world_size", [2, 3])  # 4 shards: whole shards per process, or every 3rd example
def test_processes_get_disjoint_parts_and_the_same_number_of_batches(corpus, world_size):
    parts = [sum(_epoch(StreamingPairs(corpus, BATCH, rank=rank, world_size=world_size), 0), [])
             for rank in range(world_size)]
    flat = sum(parts, [])
    assert len(set(flat)) == len(flat) and len({len(p) for p in parts}) == 1
    assert len(parts[0]) == rows_per_process([16, 15, 15, 15], world_size) // BATCH * BATCH


def test_too_few_examples_for_a_batch_is_an_error(corpus):
    with pytest.raises(ValueError, match="give no batch of 64"):
        StreamingPairs(corpus, 64, world_size=2)


def test_a_shard_with_other_columns_is_named_before_training(corpus, tmp_path):
    """Every shard's footer is read up front: one that lacks a column, or has no images, fails here, not mid-epoch."""
    import pyarrow.parquet as pq

    table = pq.read_table(corpus[0])
    odd = tmp_path / "odd.parquet"
    pq.write_table(table.drop_columns(["captions"]), odd)
    with pytest.raises(ValueError, match=rf"{odd}: its columns differ from .*captions"):
        StreamingPairs([*corpus, str(odd)], BATCH)
    pq.write_table(table.drop_columns(["image"]), odd)
    with pytest.raises(ValueError, match=rf"{odd}: no 'image' column"):
        StreamingPairs([str(odd), *corpus], BATCH)


def test_batches_feed_the_training_collator(corpus, synthetic_tokenizer_dir):
    from modeling_sarclip import SarclipImageProcessor, SarclipProcessor, SarclipTokenizer
    from train.sarclip.data import ImageTextCollator

    processor = SarclipProcessor(SarclipImageProcessor(size=32), SarclipTokenizer.from_pretrained(synthetic_tokenizer_dir))
    stream = StreamingPairs(corpus, BATCH, ImageTextCollator(processor, seed=0, group_by="label"), world_size=2)
    assert isinstance(stream.features["label"], datasets.ClassLabel)  # known before streaming: the loss can group
    stream.set_epoch(2)
    batch = next(iter(stream))
    assert batch["pixel_values"].shape == (BATCH, 3, 32, 32) and batch["input_ids"].shape[0] == BATCH
    plain = StreamingPairs(corpus, BATCH, world_size=2)
    plain.set_epoch(2)
    assert batch["group_ids"].tolist() == [example["label"] for example in next(iter(plain))]


def test_a_bad_streamed_image_is_named_with_the_file_stored_beside_it(synthetic_tokenizer_dir, tmp_path):
    """Streamed shards are not decoded up front; the collator names the example its batch could not take."""
    import io

    import numpy as np
    import tifffile
    from PIL import Image

    from modeling_sarclip import SarclipImageProcessor, SarclipProcessor, SarclipTokenizer
    from modeling_sarclip.sar_raster_sarclip import SarRasterError
    from train.sarclip.data import ImageTextCollator

    def encoded(array, fmt):
        buffer = io.BytesIO()
        tifffile.imwrite(buffer, array) if fmt == "tif" else Image.fromarray(array).save(buffer, "PNG")
        return buffer.getvalue()

    rows = [{"image": {"bytes": encoded(np.full((32, 32), i, np.uint8), "png"), "path": f"chip{i}.png"},
             "captions": [f"chip {i}"]} for i in range(BATCH)]
    bad = np.full((32, 32), -12.0, np.float32)
    bad[3, 3] = np.nan
    rows[2]["image"] = {"bytes": encoded(bad, "tif"), "path": "scene_db.tif"}
    features = datasets.Features({"image": datasets.Image(), "captions": datasets.Sequence(datasets.Value("string"))})
    shard = tmp_path / "data" / "train-00000-of-00001.parquet"
    shard.parent.mkdir()
    datasets.Dataset.from_list(rows, features=features).to_parquet(shard)
    processor = SarclipProcessor(SarclipImageProcessor(size=32), SarclipTokenizer.from_pretrained(synthetic_tokenizer_dir))
    stream = StreamingPairs([str(shard)], BATCH, ImageTextCollator(processor, seed=0))
    stream.set_epoch(0)
    with pytest.raises(SarRasterError, match=r"^training example \d \(scene_db\.tif\): 1 NaN/inf pixel values; fix"):
        next(iter(stream))
