"""Synthetic SAR chips with 8 template sub-texts each, a WordPiece tokenizer and a tiny SAR-KnowLIP for SCIO tests."""

import pytest
import torch

from dataset_scripts import SYNTHETIC_CLASSES, synthetic_dataset
from modeling_knowlip import SarKnowlipConfig, SarKnowlipModel, SarKnowlipProcessor, train_wordpiece_tokenizer
from modeling_sarclip import SarclipImageProcessor

FUNCTIONS = {"sea": "maritime transport", "land": "agriculture", "urban": "housing"}


def subtexts(label: int, clutter: str, index: int) -> list[str]:
    """8 sub-texts (scene, function, terrain, target, layout, scattering, shadow, context) from simple templates;
    every third image gets a wrong target claim as its last sub-text (the kind of noise SCIO should find)."""
    target = SYNTHETIC_CLASSES[label].replace("_", " ")
    wrong = SYNTHETIC_CLASSES[(label + 2) % len(SYNTHETIC_CLASSES)].replace("_", " ")
    return [
        f"the scene background is {clutter}",
        f"the region is used for {FUNCTIONS[clutter]}",
        "the terrain is flat" if clutter != "urban" else "the terrain is built up",
        f"the target is a {target}",
        f"one {target} lies near the centre",
        f"the {target} gives bright scattering",
        f"a dark shadow falls below the {target}",
        f"a {wrong} is also visible" if index % 3 == 0 else f"the {target} stands alone",
    ]


@pytest.fixture(autouse=True)
def one_torch_thread():
    """Tiny models run several times faster on one thread when the CI cores are shared."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="session")
def scio_dataset():
    """6 synthetic 32 px SAR chips with `image` and `subtexts` (8 per image) columns."""
    chips = synthetic_dataset(num_train=6, num_test=0, image_size=32, seed=3)["train"]
    texts = [subtexts(label, clutter, i) for i, (label, clutter) in enumerate(zip(chips["label"], chips["clutter"]))]
    return chips.select_columns(["image"]).add_column("subtexts", texts)


@pytest.fixture(scope="session")
def processor(scio_dataset):
    corpus = [" ".join(text) for text in scio_dataset["subtexts"]] * 3
    tokenizer = train_wordpiece_tokenizer(corpus, vocab_size=200)
    return SarKnowlipProcessor(image_processor=SarclipImageProcessor(size=32), tokenizer=tokenizer)


@pytest.fixture
def tiny_model(processor):
    def make(seed: int = 0) -> SarKnowlipModel:
        torch.manual_seed(seed)
        return SarKnowlipModel(SarKnowlipConfig.from_preset("tiny", tokenizer=processor.tokenizer, queue_size=16))
    return make
