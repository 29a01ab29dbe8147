"""Synthetic SAR chips with 8 template sub-texts each, a WordPiece tokenizer and a tiny SAR-KnowLIP for SCIO tests."""

import pytest
import torch

from modeling_knowlip import SarKnowlipConfig, SarKnowlipModel, SarKnowlipProcessor, train_wordpiece_tokenizer
from modeling_sarclip import SarclipImageProcessor
from train.knowlip.synthetic_texts import synthetic_scio_dataset


@pytest.fixture(scope="session")
def scio_dataset():
    """6 synthetic 32 px SAR chips with `image` and `subtexts` (8 per image) columns."""
    return synthetic_scio_dataset(num_images=6, image_size=32, seed=3)


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
