"""Tiny SAR-KnowLIP models, a WordPiece tokenizer trained on SAR captions, and batches for the tests."""

import numpy as np
import pytest
import torch

from modeling_knowlip import SarKnowlipConfig, SarKnowlipProcessor, train_wordpiece_tokenizer
from modeling_sarclip import SarclipImageProcessor

CAPTIONS = [
    "a cargo ship sails on the open sea",
    "two aircraft are parked on the airport apron",
    "a storage tank stands beside an industrial road",
    "dense buildings line the streets of the urban area",
    "a vehicle drives along a rural road between fields",
    "the main landform is farmland with scattered villages",
    "bright double bounce lines mark the building walls",
    "the radar shadow falls behind the tall tank",
    "target count: how many ships are in the harbour",
    "target position: where is the aircraft in region three",
]


@pytest.fixture(scope="session")
def tokenizer():
    """An uncased WordPiece vocabulary trained offline on a few SAR captions ([PAD]=0 ... [MASK]=4)."""
    return train_wordpiece_tokenizer(CAPTIONS * 3, vocab_size=300)


@pytest.fixture(scope="session")
def processor(tokenizer):
    return SarKnowlipProcessor(image_processor=SarclipImageProcessor(size=32), tokenizer=tokenizer)


@pytest.fixture
def tiny_config(tokenizer):
    """`tiny_config(**overrides)`: the "tiny" preset (32 px ViT, 32-wide BERT towers) sized to `tokenizer`."""
    return lambda **overrides: SarKnowlipConfig.from_preset("tiny", tokenizer=tokenizer, **overrides)


@pytest.fixture
def images():
    """`images(n, seed)`: n uint8 SAR-like chips (speckle) of 40 x 40 px."""
    def make(count: int, seed: int = 0) -> list[np.ndarray]:
        rng = np.random.default_rng(seed)
        return [(rng.gamma(1.0, 60.0, (40, 40)).clip(0, 255)).astype(np.uint8) for _ in range(count)]
    return make


@pytest.fixture
def batch(processor, images):
    """`batch(n)`: processor output (pixel_values, input_ids, attention_mask) for the first n captions."""
    def make(count: int = 4, seed: int = 0):
        torch.manual_seed(seed)
        return dict(processor(images=images(count, seed), text=CAPTIONS[:count]))
    return make
