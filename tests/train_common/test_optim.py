"""The trainers' AdamW: the fused kernel makes the same update as PyTorch's default implementation (the speed lever
of `bench/bench_sarclip_vs_open_clip.py` keeps the math), and the weight-decay groups follow their rule."""

import pytest
import torch

from train.common.optim import build_adamw, decay_groups


def _model():
    torch.manual_seed(0)
    return torch.nn.Sequential(torch.nn.Linear(8, 16), torch.nn.LayerNorm(16), torch.nn.Linear(16, 4))


def test_the_fused_adamw_updates_the_parameters_as_the_default_adamw():
    models = {"fused": _model(), "default": _model()}
    optimizers = {"fused": build_adamw(models["fused"], 1e-2, 0.1, "cpu"),
                  "default": torch.optim.AdamW(decay_groups(models["default"], 0.1), lr=1e-2)}
    assert optimizers["fused"].defaults["fused"] and not optimizers["default"].defaults["fused"]
    x = torch.randn(32, 8, generator=torch.Generator().manual_seed(1))
    for _ in range(20):
        for name, model in models.items():
            model(x).pow(2).mean().backward()
            optimizers[name].step()
            optimizers[name].zero_grad()
    start = _model().state_dict()
    for key, value in models["fused"].state_dict().items():
        assert not torch.equal(value, start[key])  # the parameters did move
        torch.testing.assert_close(value, models["default"].state_dict()[key], rtol=1e-5, atol=1e-6, msg=key)


def test_decay_groups_exclude_norms_and_biases_for_open_clip_and_keep_all_for_albef():
    model = _model()
    no_decay, decay = decay_groups(model, 0.2)
    assert [p.shape for p in decay["params"]] == [torch.Size([16, 8]), torch.Size([4, 16])]
    assert decay["weight_decay"] == 0.2 and no_decay["weight_decay"] == 0.0 and len(no_decay["params"]) == 4
    (everything,) = decay_groups(model, 0.2, "all")
    assert len(everything["params"]) == 6 and everything["weight_decay"] == 0.2
    with pytest.raises(ValueError, match="unknown weight-decay rule"):
        decay_groups(model, 0.2, "some")
