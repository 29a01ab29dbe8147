"""Tiny SARCLIP training fixtures: a few-layer ViT/ResNet config and fast TrainConfigs on the synthetic SAR set."""

import pytest
import torch

from modeling_sarclip import SarclipConfig
from train.sarclip.config import TrainConfig

TINY_VIT = {
    "embed_dim": 16,
    "vision_cfg": {"image_size": 32, "patch_size": 8, "layers": 2, "width": 32, "head_width": 16},
    "text_cfg": {"context_length": 24, "width": 32, "heads": 2, "layers": 2},
}


@pytest.fixture(scope="session")
def synthetic_tokenizer_dir(tmp_path_factory):
    """A BPE trained once on synthetic captions: runs that must match each other share one vocabulary."""
    from dataset_scripts import synthetic_dataset
    from modeling_sarclip import train_sarclip_tokenizer

    captions = [c for caps in synthetic_dataset(48, 16, 32)["train"]["captions"] for c in caps]
    folder = tmp_path_factory.mktemp("tokenizer")
    train_sarclip_tokenizer(captions, vocab_size=300).save_pretrained(folder)
    return folder


@pytest.fixture
def tiny_train_config(tmp_path, synthetic_tokenizer_dir):
    """`tiny_train_config(**fields)`: a seconds-long run (tiny ViT, BPE of the synthetic captions, 48 synthetic
    chips, no trackers)."""

    def make(**fields) -> TrainConfig:
        values = dict(
            data="synthetic", synthetic_num_train=48, synthetic_num_test=16, synthetic_image_size=32,
            model="ViT-B-32", model_overrides=TINY_VIT, tokenizer=str(synthetic_tokenizer_dir),
            learning_rate=1e-3, batch_size=8, num_epochs=1, eval_tasks=[], report_to="none",
            output_dir=str(tmp_path / "run"), log_every=1,
        )
        values.update(fields)
        return TrainConfig(**values)

    return make


@pytest.fixture
def tiny_model_config():
    """`tiny_model_config("vit" | "resnet")`: random-init SarclipConfig with the CLIP vocabulary."""

    def make(kind: str = "vit") -> SarclipConfig:
        vision = (
            dict(image_size=32, layers=[1, 1, 1, 1], width=8, head_width=8)
            if kind == "resnet"
            else dict(image_size=32, layers=2, width=32, head_width=16, patch_size=8)
        )
        return SarclipConfig(
            vision_config=vision, text_config=dict(
                context_length=16, vocab_size=64, width=32, heads=2, layers=2, bos_token_id=62, eos_token_id=63
            ),
            embed_dim=16,
        )

    return make


def random_batch(n: int, image_size: int = 32, length: int = 16, vocab: int = 64, seed: int = 0) -> dict:
    """Pixels and token ids for `tiny_model_config` (64-token vocabulary, end-of-text id 63)."""
    g = torch.Generator().manual_seed(seed)
    ids = torch.randint(1, vocab - 2, (n, length), generator=g)
    ids[torch.arange(n), torch.randint(3, length, (n,), generator=g)] = vocab - 1
    return {"pixel_values": torch.randn(n, 3, image_size, image_size, generator=g), "input_ids": ids}


@pytest.fixture
def make_batch():
    return random_batch
