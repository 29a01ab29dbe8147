"""Training data: CSV errors name the file, epoch order and caption choice are reproducible."""

import pytest
from PIL import Image

from dataset_scripts.errors import DatasetBuildError
from train.sarclip.config import TrainConfig
from train.sarclip.data import EpochShuffleSampler, ImageTextCollator, load_image_text_dataset


def _write_csv(tmp_path, rows, header="filepath,title"):
    path = tmp_path / "pairs.csv"
    path.write_text("\n".join([header, *rows]) + "\n")
    return path


def test_csv_pairs_load_relative_to_the_file(tmp_path):
    Image.new("L", (8, 8), 100).save(tmp_path / "a.png")
    path = _write_csv(tmp_path, ["a.png,a bright ship"])
    dataset = load_image_text_dataset(TrainConfig(data=str(path)))
    assert dataset["train"][0]["captions"] == ["a bright ship"]
    assert dataset["train"][0]["image"].size == (8, 8)


def test_csv_missing_image_empty_caption_and_column_are_named(tmp_path):
    path = _write_csv(tmp_path, ["missing.png,a ship"])
    with pytest.raises(DatasetBuildError, match=r"pairs.csv: 1 image file\(s\) not found.*missing.png"):
        load_image_text_dataset(TrainConfig(data=str(path)))
    Image.new("L", (8, 8), 100).save(tmp_path / "a.png")
    path = _write_csv(tmp_path, ["a.png,a ship", "a.png,"])
    with pytest.raises(DatasetBuildError, match=r"pairs.csv: row 3: empty caption"):
        load_image_text_dataset(TrainConfig(data=str(path)))
    path = _write_csv(tmp_path, ["a.png,a ship"], header="picture,words")
    with pytest.raises(DatasetBuildError, match=r"pairs.csv: no image column found"):
        load_image_text_dataset(TrainConfig(data=str(path)))
    with pytest.raises(DatasetBuildError, match=r"pairs.csv: no caption column 'title'"):
        load_image_text_dataset(TrainConfig(data=str(_write_csv(tmp_path, ["a.png,x"], "filepath,text")),
                                            csv_caption_key="title"))


def test_rows_of_one_image_are_grouped_and_columns_detected(tmp_path):
    Image.new("L", (8, 8), 100).save(tmp_path / "a.png")
    path = _write_csv(tmp_path, ["a.png,a ship", "a.png,a vessel"], header="filename,caption")
    dataset = load_image_text_dataset(TrainConfig(data=str(path)))
    assert dataset["train"]["captions"] == [["a ship", "a vessel"]]


def test_epoch_order_and_captions_depend_only_on_seed_and_epoch():
    sampler = EpochShuffleSampler(10, seed=3)
    first = list(sampler)
    sampler.set_epoch(1)
    assert sorted(first) == list(range(10)) and list(sampler) != first
    sampler.set_epoch(0)
    assert list(sampler) == first

    collator = ImageTextCollator(processor=None, seed=3)
    example = {"captions": [f"caption {i}" for i in range(5)], "__index__": 7}
    picks = {collator.caption_for(example) for _ in range(3)}
    assert len(picks) == 1
    collator.epoch = 1
    assert {collator.caption_for({**example, "__index__": i}) for i in range(20)} == set(example["captions"])
