"""Training data: every --data form (caption and label tables, image folders), held-out splits, captions from labels,
positive groups and augmentation; bad input is named."""

import json
import re

import numpy as np

import pytest
import torch
from PIL import Image

from dataset_scripts.errors import DatasetBuildError
from train.sarclip.config import TrainConfig
from train.common.sampling import EpochShuffleSampler
from train.sarclip.data import ImageTextCollator, load_image_text_dataset
from train.sarclip.trainer import fit


def _write_csv(tmp_path, rows, header="filepath,title"):
    path = tmp_path / "pairs.csv"
    path.write_text("\n".join([header, *rows]) + "\n")
    return path


def test_csv_pairs_load_relative_to_the_file(tmp_path):
    Image.new("L", (8, 8), 100).save(tmp_path / "a.png")
    path = _write_csv(tmp_path, ["a.png,a bright ship"])
    dataset = load_image_text_dataset(TrainConfig(data=str(path), eval_split=None))
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
    dataset = load_image_text_dataset(TrainConfig(data=str(path), eval_split=None))
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


def _chip_folder(root, layout):
    """layout: {relative class folder: number of chips}; chips are 8-bit PNGs and float32 dB TIFFs."""
    import numpy as np
    import tifffile

    for folder, count in layout.items():
        (root / folder).mkdir(parents=True, exist_ok=True)
        for i in range(count):
            if i % 2:
                tifffile.imwrite(root / folder / f"{i}.tif", np.full((12, 12), -10.0 - i, np.float32))
            else:
                Image.new("L", (12, 12), 40 * i % 255).save(root / folder / f"{i}.png")
    return root


@pytest.mark.parametrize("layout", ["split", "flat"])
def test_image_folder_labels_become_template_captions(tmp_path, layout):
    classes = {"cargo": 5, "tanker": 5}
    if layout == "split":
        _chip_folder(tmp_path, {f"{split}/{c}": n for split in ("train", "test") for c, n in classes.items()})
    else:
        _chip_folder(tmp_path, classes)
    words = tmp_path / "words.yaml"
    words.write_text("tanker: oil tanker\n")
    dataset = load_image_text_dataset(TrainConfig(data=str(tmp_path), class_words=str(words)))
    assert set(dataset) == {"train", "test"}
    if layout == "flat":  # held out: seeded and stratified, 2 of 10 chips, one per class
        assert sorted(dataset["test"]["label"]) == [0, 1] and len(dataset["train"]) == 8
    assert dataset["train"].features["label"].names == ["cargo", "tanker"]
    example = dataset["train"][0]
    assert example["image"].endswith((".png", ".tif"))
    word = "cargo" if example["label"] == 0 else "oil tanker"
    assert len(example["captions"]) == 10 and all(word in caption for caption in example["captions"])


def test_held_out_split_is_reproducible_and_eval_split_typos_are_errors(tmp_path):
    _chip_folder(tmp_path / "flat", {"a": 6, "b": 6})
    first = load_image_text_dataset(TrainConfig(data=str(tmp_path / "flat"), seed=3))
    again = load_image_text_dataset(TrainConfig(data=str(tmp_path / "flat"), seed=3))
    assert first["test"]["image"] == again["test"]["image"]
    _chip_folder(tmp_path / "split", {"train/a": 2, "train/b": 2, "test/a": 1, "test/b": 1})
    with pytest.raises(ValueError, match=r"no split 'tset'"):
        load_image_text_dataset(TrainConfig(data=str(tmp_path / "split"), eval_split="tset"))


def test_label_table_and_bad_folders_are_named(tmp_path):
    _chip_folder(tmp_path / "chips", {"a": 2, "b": 2})
    table = tmp_path / "labels.csv"
    table.write_text("image,label\nchips/a/0.png,ship\nchips/a/1.tif,ship\nchips/b/0.png,tank\nchips/b/1.tif,tank\n")
    dataset = load_image_text_dataset(TrainConfig(data=str(table), eval_split=None))
    assert dataset["train"].features["label"].names == ["ship", "tank"] and len(dataset["train"]) == 4
    table.write_text("image,label\nchips/a/0.png,ship\nchips/b/0.png,\n")
    with pytest.raises(DatasetBuildError, match="labels.csv: row 3: empty label"):
        load_image_text_dataset(TrainConfig(data=str(table)))
    with pytest.raises(ValueError, match=r"class words given for unknown classes \['tnak'\]"):
        words = tmp_path / "w.json"
        words.write_text('{"tnak": "tank"}')
        load_image_text_dataset(TrainConfig(data=str(tmp_path / "chips"), class_words=str(words)))

    _chip_folder(tmp_path / "one", {"a": 3})
    with pytest.raises(DatasetBuildError, match=r"one: an image folder needs at least 2 class folders"):
        load_image_text_dataset(TrainConfig(data=str(tmp_path / "one")))
    _chip_folder(tmp_path / "empty", {"a": 3})
    (tmp_path / "empty" / "b").mkdir()
    (tmp_path / "empty" / "b" / "notes.txt").write_text("x")
    with pytest.raises(DatasetBuildError, match=r"empty/b: class folder holds no image"):
        load_image_text_dataset(TrainConfig(data=str(tmp_path / "empty")))
    _chip_folder(tmp_path / "broken", {"a": 2, "b": 2})
    (tmp_path / "broken" / "b" / "bad.png").write_bytes(b"not a png")
    with pytest.raises(DatasetBuildError, match=r"bad.png: unusable image: cannot read SAR image"):
        load_image_text_dataset(TrainConfig(data=str(tmp_path / "broken")))


@pytest.mark.parametrize("raster, problem", [
    (np.where(np.eye(16, dtype=bool), np.nan, -12.0).astype(np.float32), "16 NaN/inf pixel values"),
    (np.zeros((16, 16), np.int16), "unsupported pixel type int16"),
    (np.zeros((16, 16, 4), np.uint8), "1-3 bands"),
    (np.zeros((16, 16, 3), np.float32), "float rasters are read as dB and must have 1 band or 2 bands"),
], ids=["nan", "int16", "4-band", "3-band float"])
def test_chips_the_processor_would_refuse_are_named_before_training(tmp_path, raster, problem):
    """Checked when the data is loaded, with the radiometry training applies: not when their batch is built, nor after
    training when they sit in the held-out split."""
    import tifffile

    _chip_folder(tmp_path / "chips", {"a": 2, "b": 2})
    tifffile.imwrite(tmp_path / "chips" / "b" / "odd.tif", raster)
    with pytest.raises(DatasetBuildError, match=rf"odd\.tif: unusable image: .*{re.escape(problem)}"):
        load_image_text_dataset(TrainConfig(data=str(tmp_path / "chips")))
    (tmp_path / "pairs.csv").write_text(f"filepath,title\n{tmp_path / 'chips' / 'a' / '0.png'},a caption\n"
                                        f"{tmp_path / 'chips' / 'b' / 'odd.tif'},another caption\n")
    with pytest.raises(DatasetBuildError, match=rf"odd\.tif: unusable image: .*{re.escape(problem)}"):
        load_image_text_dataset(TrainConfig(data=str(tmp_path / "pairs.csv")))  # a caption table too


def test_group_ids_by_label_or_caption():
    from train.sarclip.data import caption_id

    collator = ImageTextCollator(processor=lambda images, text: {"pixel_values": torch.zeros(len(images), 3, 4, 4),
                                                                  "input_ids": torch.zeros(len(text), 5)},
                                 seed=0, group_by="caption")
    examples = [{"image": None, "captions": [c], "__index__": i, "label": i % 2}
                for i, c in enumerate(["a ship", "a tank", "a ship"])]
    ids = collator(examples)["group_ids"].tolist()
    assert ids[0] == ids[2] != ids[1] and ids[0] == caption_id("a ship")
    collator.group_by = "label"
    assert collator(examples)["group_ids"].tolist() == [0, 1, 0]


def test_class_prompts_one_per_class_drawn_per_batch_and_labels():
    collator = ImageTextCollator(processor=lambda images=None, text=None: {
        "pixel_values": torch.zeros(len(images or []), 3, 4, 4), "input_ids": torch.tensor([[len(t)] for t in text])},
        seed=0, prompts=[["a ship", "the ship in SAR"], ["a tank", "an armoured tank in SAR"], ["a car"]])
    examples = [{"image": None, "captions": ["x"], "__index__": i, "label": label} for i, label in enumerate([2, 0])]
    batch = collator(examples)
    assert batch["labels"].tolist() == [2, 0] and batch["class_input_ids"].shape == (3, 1)
    assert batch["class_input_ids"][2].item() == len("a car")
    assert torch.equal(collator(examples)["class_input_ids"], batch["class_input_ids"])  # seeded: resumes exactly
    draws = set()
    for epoch in range(8):
        collator.epoch = epoch
        draws.add(tuple(collator(examples)["class_input_ids"].flatten().tolist()))
    assert len(draws) > 1  # each class's prompt is drawn anew


def test_augmentation_is_deterministic_per_example_and_keeps_pixel_values():
    from train.sarclip.augment import SarAugment

    chips = torch.arange(2 * 3 * 16 * 16, dtype=torch.float32).reshape(2, 3, 16, 16)
    augment = SarAugment(["translate", "hflip"], translate_fraction=0.25, seed=1)
    once, again = augment(chips, epoch=0, indices=[5, 6]), augment(chips, epoch=0, indices=[5, 6])
    assert torch.equal(once, again) and not torch.equal(once, chips)
    assert not torch.equal(augment(chips, epoch=1, indices=[5, 6]), once)
    assert set(once.unique().tolist()) <= set(chips.unique().tolist())  # values moved, never resampled
    with pytest.raises(ValueError, match=r"unknown augmentations \['rotate'\]"):
        SarAugment(["rotate"])


def test_translate_crops_real_pixels_from_a_wider_square():
    from train.sarclip.augment import SarAugment

    augment = SarAugment(["translate"], translate_fraction=0.25, seed=0)
    assert augment.margin(16) == 4 and SarAugment(["hflip"]).margin(16) == 0
    wide = torch.arange(1 * 3 * 24 * 24, dtype=torch.float32).reshape(1, 3, 24, 24)
    crops = [augment(wide, epoch=e, indices=[0], margin=4) for e in range(6)]
    assert all(c.shape == (1, 3, 16, 16) for c in crops)
    # every crop is a window of the wide square (no reflection when the raster has the pixels)
    for crop in crops:
        top, left = divmod(int(crop[0, 0, 0, 0]) , 24)
        assert torch.equal(crop[0], wide[0, :, top : top + 16, left : left + 16])
    assert len({int(c[0, 0, 0, 0]) for c in crops}) > 1


def test_collator_standardises_after_the_crop(tmp_path):
    from modeling_sarclip import SarclipImageProcessor, SarclipProcessor, SarclipTokenizer
    from train.sarclip.augment import SarAugment

    processor = SarclipProcessor(SarclipImageProcessor(size=16, do_resize=False, per_image_standardize=True),
                                 SarclipTokenizer.from_bpe_file())
    rng = np.random.default_rng(0)
    chip = rng.integers(0, 40, (32, 32)).astype(np.uint8)
    chip[:, 24:] = 250  # a bright strip the centre crop never sees, a shifted crop may
    collator = ImageTextCollator(processor, seed=0, augment=SarAugment(["translate"], translate_fraction=0.45))
    pixels = collator([{"image": chip, "captions": ["a"], "__index__": 0}])["pixel_values"]
    assert pixels.shape == (1, 3, 16, 16)
    assert abs(pixels.mean().item()) < 1e-5 and abs(pixels.std(unbiased=False).item() - 1) < 1e-4


def test_label_table_as_jsonl_and_malformed_csv_is_named(tmp_path):
    _chip_folder(tmp_path / "chips", {"a": 2, "b": 2})
    rows = [{"image": f"chips/{c}/{i}.{'tif' if i else 'png'}", "label": c} for c in "ab" for i in range(2)]
    (tmp_path / "labels.jsonl").write_text("\n".join(json.dumps(r) for r in rows))
    dataset = load_image_text_dataset(TrainConfig(data=str(tmp_path / "labels.jsonl"), eval_split=None))
    assert dataset["train"].features["label"].names == ["a", "b"] and len(dataset["train"]) == 4
    (tmp_path / "bad.csv").write_text('image,label\n"chips/a/0.png,a\nchips/b/0.png,b\n')
    with pytest.raises(DatasetBuildError, match=r"bad.csv: line \d+: malformed CSV"):
        load_image_text_dataset(TrainConfig(data=str(tmp_path / "bad.csv")))
    # JSON labels may be numbers (they name the classes); a list is an error that names the row
    numbered = [{"image": r["image"], "label": 1 if r["label"] == "a" else 2} for r in rows]
    (tmp_path / "numbers.jsonl").write_text("\n".join(json.dumps(r) for r in numbered))
    dataset = load_image_text_dataset(TrainConfig(data=str(tmp_path / "numbers.jsonl"), eval_split=None))
    assert dataset["train"].features["label"].names == ["1", "2"]
    (tmp_path / "lists.jsonl").write_text("\n".join(json.dumps({**r, "label": [r["label"]]}) for r in numbered))
    with pytest.raises(DatasetBuildError, match=r"lists.jsonl: row 2: column 'label' holds list \[1\]"):
        load_image_text_dataset(TrainConfig(data=str(tmp_path / "lists.jsonl"), eval_split=None))


def test_held_out_split_keeps_both_polarisations_of_a_ship_together(sar_data_dir, tmp_path, capsys):
    """OpenSARShip chips in class folders (a user's flat folder): the VV and VH chips of one ship are one group, so
    the held-out split never puts the same ship on both sides (a random split did, inflating test scores)."""
    flat = tmp_path / "ships"
    patches = sorted((sar_data_dir / "opensarship" / "patches").rglob("*_v[vh].tif"))
    for path in [p for p in patches if p.name.split("_")[1] in ("Cargo", "Tanker")][:80]:
        (flat / path.name.split("_")[1]).mkdir(parents=True, exist_ok=True)
        (flat / path.name.split("_")[1] / path.name).symlink_to(path)
    data = load_image_text_dataset(TrainConfig(data=str(flat), held_out_fraction=0.3, seed=1,
                                               allow_outside_data=True))  # the chips are links to the shared data
    assert "whole groups by file name without its polarisation suffix" in capsys.readouterr().out

    def ships(split):
        return {name.rsplit("_", 1)[0] for name in (p.rsplit("/", 1)[-1] for p in data[split]["image"])}

    assert ships("train") and ships("test") and not ships("train") & ships("test")
    assert len(data["train"]) + len(data["test"]) == len(list(flat.rglob("*.tif")))


def test_a_build_of_float_amplitude_array_columns_trains(sar_data_dir, tmp_path, tiny_train_config):
    """MSTAR raw chips are stored as float amplitude array columns (datasets.Image cannot hold them); the data path
    nests them into an `image` cell that the processor reads in dB, and a run trains and evaluates on them."""
    from dataset_scripts import array_from_example, build_dataset
    from modeling_sarclip import SarclipImageProcessor
    from modeling_sarclip.radiometry_sarclip import amplitude_to_db

    build_dataset("mstar_raw", sar_data_dir / "mstar_raw", tmp_path / "raw")
    data = load_image_text_dataset(TrainConfig(data=str(tmp_path / "raw")))
    row = data["train"][0]
    assert set(row["image"]) == {"array", "shape", "bands", "unit"} and row["image"]["unit"] == "amplitude"
    processor = SarclipImageProcessor(size=32)
    expected = processor(images=amplitude_to_db(array_from_example(row["image"])), return_tensors="pt")
    read = processor(images=row["image"], return_tensors="pt")["pixel_values"]
    assert torch.equal(read, expected["pixel_values"]) and read.std() > 0  # read in dB, not floored to a constant
    result = fit(tiny_train_config(data=str(tmp_path / "raw"), batch_size=2, max_steps=2, eval_tasks=["zero_shot"]))
    assert result.state.global_step == 2 and "zero_shot/top1" in result.metrics
