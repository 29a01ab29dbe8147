"""Tiny random SARCLIP models, the official CLIP tokenizer and a small synthetic SAR set for the evaluation tests."""

import pytest
import torch

from dataset_scripts import synthetic_dataset
from modeling_sarclip import SarclipConfig, SarclipImageProcessor, SarclipModel, SarclipProcessor, SarclipTokenizer
from modeling_sarclip.tokenization_sarclip import default_bpe_path

IMAGE_SIZE = 32
CLASS_NAMES = ["vehicle", "ship", "aircraft", "storage tank", "building"]  # caption words of the synthetic labels


def _tiny_config(**overrides) -> SarclipConfig:
    kwargs = dict(
        vision_config=dict(image_size=IMAGE_SIZE, layers=2, width=32, head_width=16, patch_size=8),
        text_config=dict(context_length=77, vocab_size=49408, width=32, heads=2, layers=2),
        embed_dim=16,
    )
    kwargs.update(overrides)
    return SarclipConfig(**kwargs)


@pytest.fixture(scope="session")
def tiny_config():
    """`tiny_config(**overrides)`: a small random-init ViT SARCLIP config (32 px images, 16-d embeddings)."""
    return _tiny_config


@pytest.fixture(scope="session")
def make_model():
    """`make_model(seed, **config_overrides)`: a tiny random SarclipModel in eval mode."""

    def make(seed: int = 0, **overrides) -> SarclipModel:
        torch.manual_seed(seed)
        return SarclipModel(_tiny_config(**overrides)).eval()

    return make


@pytest.fixture(scope="session")
def processor() -> SarclipProcessor:
    return SarclipProcessor(SarclipImageProcessor(size=IMAGE_SIZE), SarclipTokenizer.from_bpe_file(default_bpe_path()))


@pytest.fixture(scope="session")
def tiny_dataset():
    """Synthetic SAR DatasetDict: 30 train / 15 test chips of 32 px, 5 classes, 5 captions per chip."""
    return synthetic_dataset(num_train=30, num_test=15, image_size=IMAGE_SIZE)


@pytest.fixture(scope="session")
def class_names():
    return list(CLASS_NAMES)
