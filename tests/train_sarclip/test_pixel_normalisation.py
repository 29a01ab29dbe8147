"""standardize: dataset (the train images' statistics) or per_image, saved with the model's processor."""

import pytest
import torch

from modeling_sarclip import SarclipProcessor
from train.sarclip import fit
from train.sarclip.config import TrainConfig
from train.sarclip.data import load_image_text_dataset


def test_fit_saves_the_train_images_statistics(tiny_train_config):
    config = tiny_train_config(max_steps=1, standardize="dataset", eval_tasks=[])
    result = fit(config)
    processor = SarclipProcessor.from_pretrained(result.model_dir)
    assert processor.image_processor.image_mean is not None
    train_images = list(load_image_text_dataset(config)[config.train_split]["image"][:256])
    pixels = processor.image_processor(train_images)["pixel_values"]
    assert abs(pixels.mean().item()) < 0.1 and abs(pixels.std().item() - 1) < 0.1
    plain = fit(tiny_train_config(max_steps=1, eval_tasks=[], output_dir=str(result.model_dir.parent / "plain")))
    assert SarclipProcessor.from_pretrained(plain.model_dir).image_processor.image_mean is None


def test_streaming_cannot_measure_the_train_images():
    with pytest.raises(ValueError, match="standardize: dataset"):
        TrainConfig(streaming=True, tokenizer="open_clip", standardize="dataset")
    from train.knowlip.run_config import ScioRunConfig

    for config in (TrainConfig, ScioRunConfig):  # one rule for both families
        with pytest.raises(ValueError, match=r"standardize must be one of \('none', 'per_image', 'dataset'"):
            config(standardize="chip")


def test_pixel_statistics_ignore_an_existing_normalisation():
    from modeling_sarclip import SarclipImageProcessor, pixel_statistics

    images = [torch.rand(1, 16, 16) for _ in range(5)]
    plain = pixel_statistics(SarclipImageProcessor(size=16), images)
    assert pixel_statistics(SarclipImageProcessor(size=16, image_mean=[1.0] * 3, image_std=[2.0] * 3), images) == plain


def test_a_new_model_records_what_it_was_trained_on(tiny_train_config):
    result = fit(tiny_train_config(max_steps=1, eval_tasks=[]))
    image_processor = SarclipProcessor.from_pretrained(result.model_dir).image_processor
    mean, spread = image_processor.pixel_reference
    assert -1 < mean < 1 and 0 < spread < 1 and image_processor.standardization == "none"


def test_per_image_fine_tuning_maps_chips_to_the_base_models_training_inputs(tiny_train_config, tmp_path):
    """LoRA on dark MSTAR chips from a model trained on brighter ones collapsed (docs/RESULTS.md): the chips all
    looked alike to the base. standardize: per_image on such a base maps every chip to the base's pixel_reference."""
    import numpy as np

    from train.common.standardization import apply_standardization

    base = fit(tiny_train_config(max_steps=1, eval_tasks=[], output_dir=str(tmp_path / "base")))
    processor = SarclipProcessor.from_pretrained(base.model_dir)
    reference = processor.image_processor.pixel_reference
    apply_standardization(processor.image_processor, "per_image", None, source=str(base.model_dir))
    assert processor.image_processor.per_image_target == reference
    dark = [np.random.default_rng(i).integers(0, 40, (32, 32)).astype(np.uint8) for i in range(4)]
    pixels = processor.image_processor(dark)["pixel_values"]
    assert pixels.mean(dim=(1, 2, 3)).tolist() == pytest.approx([reference[0]] * 4, abs=1e-5)
    assert pixels.std(dim=(1, 2, 3), unbiased=False).tolist() == pytest.approx([reference[1]] * 4, abs=1e-4)
    # the fine-tuning run saves that mapping with its model, and evaluation uses it
    tuned = fit(tiny_train_config(max_steps=1, eval_tasks=[], init_from=str(base.model_dir), lora=True,
                                  standardize="per_image", output_dir=str(tmp_path / "lora")))
    saved = SarclipProcessor.from_pretrained(tuned.model_dir).image_processor
    assert saved.per_image_standardize and saved.per_image_target == reference
