"""normalize_pixels: a new processor standardises by the train images' statistics, saved with the model."""

import pytest
import torch

from modeling_sarclip import SarclipProcessor
from train.sarclip import fit
from train.sarclip.config import TrainConfig
from train.sarclip.data import load_image_text_dataset


def test_fit_saves_the_train_images_statistics(tiny_train_config):
    config = tiny_train_config(max_steps=1, normalize_pixels=True, eval_tasks=[])
    result = fit(config)
    processor = SarclipProcessor.from_pretrained(result.model_dir)
    assert processor.image_processor.image_mean is not None
    train_images = list(load_image_text_dataset(config)[config.train_split]["image"][:256])
    pixels = processor.image_processor(train_images)["pixel_values"]
    assert abs(pixels.mean().item()) < 0.1 and abs(pixels.std().item() - 1) < 0.1
    plain = fit(tiny_train_config(max_steps=1, eval_tasks=[], output_dir=str(result.model_dir.parent / "plain")))
    assert SarclipProcessor.from_pretrained(plain.model_dir).image_processor.image_mean is None


def test_streaming_cannot_measure_the_train_images():
    with pytest.raises(ValueError, match="normalize_pixels"):
        TrainConfig(streaming=True, tokenizer="open_clip", normalize_pixels=True)


def test_pixel_statistics_ignore_an_existing_normalisation():
    from modeling_sarclip import SarclipImageProcessor, pixel_statistics

    images = [torch.rand(1, 16, 16) for _ in range(5)]
    plain = pixel_statistics(SarclipImageProcessor(size=16), images)
    assert pixel_statistics(SarclipImageProcessor(size=16, image_mean=[1.0] * 3, image_std=[2.0] * 3), images) == plain
