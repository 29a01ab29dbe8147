"""Partial unfreezing (paper Fig. 6): only the last N blocks (+ head) of each tower train."""

import pytest
from accelerate.utils import set_seed
from safetensors.torch import load_file

from modeling_sarclip import SarclipModel
from train.sarclip import fit
from train.sarclip.data import load_image_text_dataset
from train.sarclip.freezing import apply_partial_unfreezing
from train.sarclip.model_setup import load_model_and_processor


def _trainable(model):
    return {n for n, p in model.named_parameters() if p.requires_grad}


def test_vit_and_text_blocks(tiny_model_config):
    model = SarclipModel(tiny_model_config("vit"))
    apply_partial_unfreezing(model, vision_layers=1, text_layers=0)
    trainable = _trainable(model)
    assert any(n.startswith("vision_model.encoder.layers.1.") for n in trainable)
    assert not any(n.startswith("vision_model.encoder.layers.0.") for n in trainable)
    assert {"vision_model.post_layernorm.weight", "vision_model.projection.weight", "text_model.projection.weight",
            "text_model.final_layer_norm.weight", "logit_scale"} <= trainable
    assert not any(n.startswith("text_model.encoder.") or "embedding" in n for n in trainable)


def test_resnet_counts_stages(tiny_model_config):
    model = SarclipModel(tiny_model_config("resnet"))
    apply_partial_unfreezing(model, vision_layers=2, text_layers=None)
    trainable = _trainable(model)
    assert any(n.startswith("vision_model.stages.3.") for n in trainable)
    assert any(n.startswith("vision_model.stages.2.") for n in trainable)
    assert not any(n.startswith(("vision_model.stages.1.", "vision_model.conv1")) for n in trainable)
    assert any(n.startswith("vision_model.attnpool.") for n in trainable)
    assert any(n.startswith("text_model.token_embedding") for n in trainable)  # None: whole tower


def test_negative_layer_count_is_refused(tiny_model_config):
    with pytest.raises(ValueError, match=">= 0"):
        apply_partial_unfreezing(SarclipModel(tiny_model_config("vit")), -1, None)


def test_training_leaves_frozen_layers_untouched(tiny_train_config):
    config = tiny_train_config(max_steps=2, trainable_vision_layers=1, trainable_text_layers=1)
    set_seed(config.seed)  # the start of `fit`: seed, data, model
    load_image_text_dataset(config)
    before = {name: tensor.clone() for name, tensor in load_model_and_processor(config)[0].state_dict().items()}
    result = fit(config)
    after = load_file(result.model_dir / "model.safetensors")
    trained = ("vision_model.encoder.layers.1.", "vision_model.post_layernorm.", "vision_model.projection.",
               "text_model.encoder.layers.1.", "text_model.final_layer_norm.", "text_model.projection.", "logit_scale")
    for name in before:
        if not name.endswith(".bias") or not name.startswith(trained):  # qkv key biases get no gradient (softmax shift)
            assert bool((before[name] == after[name]).all()) != name.startswith(trained), name
