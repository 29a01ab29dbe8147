"""A tiny random SARCLIP folder, a folder of labelled synthetic chips and a small float-dB GeoTIFF scene."""

import numpy as np
import pytest
import torch

from dataset_scripts import synthetic_dataset
from modeling_sarclip import SarclipConfig, SarclipImageProcessor, SarclipModel, SarclipProcessor, SarclipTokenizer
from modeling_sarclip.tokenization_sarclip import default_bpe_path
from tests.conftest import write_geotiff

IMAGE_SIZE = 32


def save_tiny_model(folder, seed: int = 0):
    torch.manual_seed(seed)
    config = SarclipConfig(
        vision_config=dict(image_size=IMAGE_SIZE, layers=1, width=32, head_width=16, patch_size=8),
        text_config=dict(context_length=77, vocab_size=49408, width=32, heads=2, layers=1),
        embed_dim=16,
    )
    SarclipModel(config).eval().save_pretrained(folder)
    SarclipProcessor(SarclipImageProcessor(size=IMAGE_SIZE),
                     SarclipTokenizer.from_bpe_file(default_bpe_path())).save_pretrained(folder)
    return folder


@pytest.fixture(scope="session")
def model_dir(tmp_path_factory):
    return save_tiny_model(tmp_path_factory.mktemp("model") / "tiny-sarclip")


@pytest.fixture(scope="session")
def other_model_dir(tmp_path_factory):
    return save_tiny_model(tmp_path_factory.mktemp("model") / "other-sarclip", seed=1)


@pytest.fixture(scope="session")
def chip_folder(tmp_path_factory):
    """`<class>/<n>.png`: 18 synthetic SAR chips of 32 px, 5 classes."""
    root = tmp_path_factory.mktemp("chips") / "chips"
    split = synthetic_dataset(num_train=18, num_test=1, image_size=IMAGE_SIZE)["train"]
    names = split.features["label"].names
    for i, row in enumerate(split):
        folder = root / names[row["label"]]
        folder.mkdir(parents=True, exist_ok=True)
        row["image"].save(folder / f"{i:03d}.png")
    return root


@pytest.fixture(scope="session")
def scene_folder(tmp_path_factory):
    """Two 64x64 float dB scenes at 10 m (UTM 33N): a 320 m tile side gives 4 tiles each."""
    root = tmp_path_factory.mktemp("scenes") / "scenes"
    root.mkdir()
    rng = np.random.default_rng(0)
    for i in range(2):
        db = (10 * np.log10(rng.gamma(4, 1 / 4, (64, 64))) - 15).astype(np.float32)
        db[8 * (i + 1) : 8 * (i + 1) + 6, 10:40] += 20  # a bright "ship"
        write_geotiff(root / f"scene_{i}.tif", db, origin=(500000.0 + 1000 * i, 4500000.0))
    return root
