"""Tiny SARCLIP configs and the official CLIP tokenizer (from open_clip's bundled BPE file) for the tests."""

import pytest

from modeling_sarclip import SarclipConfig, SarclipTokenizer
from modeling_sarclip.tokenization_sarclip import default_bpe_path


def _tiny_vit_config(**overrides) -> SarclipConfig:
    kwargs = dict(
        vision_config=dict(image_size=32, layers=2, width=32, head_width=16, patch_size=8),
        text_config=dict(context_length=77, vocab_size=49408, width=32, heads=2, layers=2),
        embed_dim=16,
    )
    kwargs.update(overrides)
    return SarclipConfig(**kwargs)


def _tiny_resnet_config() -> SarclipConfig:
    return _tiny_vit_config(vision_config=dict(image_size=64, layers=[1, 1, 1, 1], width=16, head_width=16))


@pytest.fixture(scope="session")
def bpe_path():
    return default_bpe_path()  # open_clip (a test dependency) ships the official CLIP merges file


@pytest.fixture(scope="session")
def clip_tokenizer(bpe_path) -> SarclipTokenizer:
    return SarclipTokenizer.from_bpe_file(bpe_path)


@pytest.fixture
def tiny_config():
    """`tiny_config("vit")` / `tiny_config("resnet")`: small random-init SARCLIP configs (ViT 32 px, ResNet 64 px)."""
    return lambda kind="vit", **overrides: _tiny_vit_config(**overrides) if kind == "vit" else _tiny_resnet_config()
