"""`prompt_loss_weight`: the zero-shot classifier's cross-entropy trained beside the contrastive loss (the LoRA
recipe), on the synthetic labelled chips."""

import math

import pytest
import torch

from train.sarclip import fit
from train.sarclip.data import ImageTextCollator, class_prompts, load_image_text_dataset, training_view
from train.sarclip.model_io import load_trained_model


def _train_prompt_loss(config, model_dir) -> float:
    """The prompt loss of a saved model on every train chip, each class by its first template."""
    model, processor = load_trained_model(model_dir)
    train = load_image_text_dataset(config)["train"]
    prompts = [[texts[0]] for texts in class_prompts(train)]
    batch = ImageTextCollator(processor, 0, prompts=prompts)([dict(example) for example in training_view(train)])
    with torch.no_grad():
        return model.eval()(**batch).prompt_loss.item()


def test_the_prompt_loss_is_added_and_trains_the_zero_shot_classifier(tiny_train_config, tmp_path):
    plain = fit(tiny_train_config(num_epochs=4, output_dir=str(tmp_path / "plain")))
    prompted_config = tiny_train_config(num_epochs=4, prompt_loss_weight=1.0, output_dir=str(tmp_path / "prompted"))
    prompted = fit(prompted_config)
    # same init and first batch: the first loss differs by the prompt loss of the untrained model, about ln 5
    assert 0.5 < prompted.losses[0] - plain.losses[0] < 2 * math.log(5)
    assert _train_prompt_loss(prompted_config, prompted.model_dir) < _train_prompt_loss(prompted_config,
                                                                                         plain.model_dir)


@pytest.mark.parametrize("fields, message", [
    ({"gradient_accumulation_steps": 2}, "prompt_loss_weight needs gradient_accumulation_steps 1"),
    ({"streaming": True, "tokenizer": "open_clip"}, "with streaming: true set it to 0"),
])
def test_prompt_loss_settings_it_cannot_serve_are_refused(tiny_train_config, fields, message):
    with pytest.raises(ValueError, match=message):
        tiny_train_config(prompt_loss_weight=1.0, **fields).check()


def test_auto_weight_adds_the_prompt_loss_only_for_a_confidently_wrong_start(tiny_train_config, tmp_path):
    from accelerate import Accelerator

    from train.sarclip.trainer import auto_prompt_loss_weight

    config = tiny_train_config(max_steps=1)
    model, processor = load_trained_model(fit(config).model_dir)
    train = load_image_text_dataset(config)["train"]
    collator = ImageTextCollator(processor, 0, group_by="label")
    with torch.no_grad():  # a cold temperature: the random features score every chip near-uniformly
        model.logit_scale.fill_(0.0)
    assert auto_prompt_loss_weight(model, train, collator, Accelerator(cpu=True)) == 0.0
    with torch.no_grad():  # the same features at 100x: confident, and mostly wrong
        model.logit_scale.fill_(math.log(100))
    assert auto_prompt_loss_weight(model, train, collator, Accelerator(cpu=True)) == 1.0
    captions_only = train.remove_columns("label")  # caption data: no classes to prompt
    assert auto_prompt_loss_weight(model, captions_only, collator, Accelerator(cpu=True)) == 0.0

