"""Speed levers that must not change the math: compile in place, a frozen compiled image tower, channels-last ResNet
towers, DataLoader defaults; and the multi-node accelerate configs parse."""

from pathlib import Path

import pytest
import torch

from modeling_sarclip import SarclipModel
from train.sarclip.performance import (
    channels_last, compile_image_tower_for_inference, dataloader_kwargs, maybe_compile,
)

CONFIGS = Path(__file__).resolve().parents[2] / "train" / "sarclip" / "accelerate_configs"


def _inputs(config, length=9):
    ids = torch.zeros(4, length, dtype=torch.long)
    ids[:, 0], ids[:, 1:5], ids[:, 5] = config.text_config.bos_token_id, 7, config.text_config.eos_token_id
    size = config.vision_config.image_size
    return ids, torch.randn(4, 3, size, size, generator=torch.Generator().manual_seed(0))


def test_dataloader_defaults_feed_a_gpu_and_leave_the_cpu_alone(monkeypatch):
    assert dataloader_kwargs(device="cpu") == {"num_workers": 0}
    assert dataloader_kwargs(2, device="cpu") == {"num_workers": 2}
    monkeypatch.setattr("train.sarclip.performance.cores_per_process", lambda: 16)
    assert dataloader_kwargs(device="cuda") == {"num_workers": 8, "pin_memory": True, "persistent_workers": True,
                                                "prefetch_factor": 4}
    assert dataloader_kwargs(3, device="cuda")["num_workers"] == 3
    monkeypatch.setattr("train.sarclip.performance.cores_per_process", lambda: 1)
    assert dataloader_kwargs(device="cuda") == {"num_workers": 0, "pin_memory": True}


def test_compile_in_place_keeps_class_weights_and_outputs(tiny_model_config):
    torch.manual_seed(0)
    model = SarclipModel(tiny_model_config("vit"))
    ids, pixels = _inputs(model.config)
    expected = model(input_ids=ids, pixel_values=pixels, return_loss=True).loss
    keys = list(model.state_dict())
    assert maybe_compile(model, False) is model and model._compiled_call_impl is None
    compiled = maybe_compile(model, True, backend="eager", fullgraph=True)
    assert compiled is model and isinstance(model, SarclipModel) and list(model.state_dict()) == keys
    for length in (9, 12):  # text lengths vary per batch
        ids, pixels = _inputs(model.config, length)
        loss = model(input_ids=ids, pixel_values=pixels, return_loss=True).loss
        if length == 9:
            torch.testing.assert_close(loss, expected, rtol=0, atol=0)
    torch._dynamo.reset()


def test_the_frozen_compiled_image_tower_embeds_like_eager_with_its_weights_as_constants(tiny_model_config):
    torch.manual_seed(0)
    model = SarclipModel(tiny_model_config("vit")).eval()
    _, pixels = _inputs(model.config)
    with torch.no_grad():
        expected = model.get_image_features(pixels, pooled_only=True).pooler_output
        assert compile_image_tower_for_inference(model) is model and model.vision_model._compiled_call_impl is not None
        torch.testing.assert_close(model.get_image_features(pixels, pooled_only=True).pooler_output, expected,
                                   rtol=1e-5, atol=1e-5)
        model.vision_model.projection.weight.mul_(2)  # frozen: the compiled graph keeps the weights it was built with
        torch.testing.assert_close(model.get_image_features(pixels, pooled_only=True).pooler_output, expected,
                                   rtol=1e-5, atol=1e-5)
    torch._dynamo.reset()


def test_channels_last_changes_only_resnet_towers(tiny_model_config):
    torch.manual_seed(0)
    resnet, vit = SarclipModel(tiny_model_config("resnet")).eval(), SarclipModel(tiny_model_config("vit"))
    ids, pixels = _inputs(resnet.config)
    with torch.no_grad():
        expected = resnet(input_ids=ids, pixel_values=pixels).logits_per_image
        channels_last(resnet)
        assert resnet.vision_model.conv1.weight.is_contiguous(memory_format=torch.channels_last)
        torch.testing.assert_close(resnet(input_ids=ids, pixel_values=pixels).logits_per_image, expected)
    weights = {name: p.clone() for name, p in vit.named_parameters()}
    channels_last(vit)
    assert all(torch.equal(p, weights[name]) and p.is_contiguous() for name, p in vit.named_parameters())


@pytest.mark.parametrize("name", ["ddp_multinode", "fsdp_multinode", "cpu_two_processes"])
def test_accelerate_configs_load(name):
    from accelerate.commands.config.config_args import load_config_from_file

    config = load_config_from_file(str(CONFIGS / f"{name}.yaml"))
    assert config.num_processes >= 2 and config.distributed_type in ("MULTI_GPU", "FSDP")
    if name == "fsdp_multinode":
        from modeling_sarclip.modeling_sarclip import SarclipPreTrainedModel

        wrapped = config.fsdp_config["fsdp_transformer_layer_cls_to_wrap"].split(",")
        assert wrapped == SarclipPreTrainedModel._no_split_modules
