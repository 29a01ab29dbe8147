"""GradCache accumulation: micro-batched steps give the gradients of one full-batch step (all negatives kept)."""

import pytest
import torch
from accelerate import Accelerator

from modeling_sarclip import SarclipModel
from train.sarclip.grad_cache import contrastive_step


@pytest.mark.parametrize("group_ids", [None, [0, 1, 0, 2, 3, 1, 4, 0]], ids=["infonce", "multi_positive"])
def test_accumulated_2x4_equals_batch_8(tiny_model_config, make_batch, group_ids):
    torch.manual_seed(0)
    reference = SarclipModel(tiny_model_config("vit")).train()
    cached = SarclipModel(tiny_model_config("vit")).train()
    cached.load_state_dict(reference.state_dict())
    batch = make_batch(8)
    if group_ids is not None:
        batch["group_ids"] = torch.tensor(group_ids)

    full_loss = reference(**batch, return_loss=True).loss
    full_loss.backward()
    loss = contrastive_step(cached, batch, Accelerator(cpu=True), num_micro_batches=2)

    torch.testing.assert_close(loss, full_loss.detach(), atol=1e-6, rtol=1e-6)
    for (name, p_ref), (_, p) in zip(reference.named_parameters(), cached.named_parameters()):
        torch.testing.assert_close(p.grad, p_ref.grad, atol=1e-5, rtol=1e-5, msg=name)


def test_caching_pass_leaves_batchnorm_statistics_alone(tiny_model_config, make_batch):
    """ResNet towers: the graph-free caching pass is undone; running stats advance once per micro-batch (replay)."""
    torch.manual_seed(0)
    model = SarclipModel(tiny_model_config("resnet")).train()
    batch = make_batch(8)
    replay_only = SarclipModel(tiny_model_config("resnet")).train()
    replay_only.load_state_dict(model.state_dict())
    contrastive_step(model, batch, Accelerator(cpu=True), num_micro_batches=2)
    with torch.no_grad():
        for i in (0, 4):
            replay_only.get_image_features(batch["pixel_values"][i : i + 4])
    for (name, expected), (_, buffer) in zip(replay_only.named_buffers(), model.named_buffers()):
        torch.testing.assert_close(buffer, expected, atol=1e-6, rtol=1e-6, msg=name)
    assert all(p.grad is not None for p in model.parameters())


def test_per_micro_batch_loss_would_differ(tiny_model_config, make_batch):
    """The naive alternative (mean of per-micro-batch losses) has fewer negatives: a different loss."""
    torch.manual_seed(0)
    model = SarclipModel(tiny_model_config("vit")).train()
    batch = make_batch(8)
    full = model(**batch, return_loss=True).loss
    halves = [model(**{k: v[i : i + 4] for k, v in batch.items()}, return_loss=True).loss for i in (0, 4)]
    assert not torch.allclose(full, sum(halves) / 2, atol=1e-3)
