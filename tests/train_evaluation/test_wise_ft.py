"""WiSE-FT: exact endpoints, the midpoint, architecture checks and the per-alpha evaluation."""

import json

import pytest
import torch

from train.evaluation.wise_ft import evaluate_wise_ft, interpolate_weights


def _assert_same_weights(model, reference):
    for (name, tensor), (ref_name, ref_tensor) in zip(model.state_dict().items(), reference.state_dict().items()):
        assert name == ref_name
        assert torch.equal(tensor, ref_tensor), name


def test_alpha_0_and_1_reproduce_the_endpoints_exactly(make_model):
    zero_shot, fine_tuned = make_model(seed=0), make_model(seed=1)
    _assert_same_weights(interpolate_weights(zero_shot, fine_tuned, 0.0), zero_shot)
    _assert_same_weights(interpolate_weights(zero_shot, fine_tuned, 1.0), fine_tuned)


def test_midpoint_and_inputs_untouched(make_model):
    zero_shot, fine_tuned = make_model(seed=0), make_model(seed=1)
    before = {k: v.clone() for k, v in zero_shot.state_dict().items()}
    mixed = interpolate_weights(zero_shot, fine_tuned, 0.5)
    theta_0, theta_1 = zero_shot.state_dict(), fine_tuned.state_dict()
    for name, tensor in mixed.state_dict().items():
        torch.testing.assert_close(tensor, (theta_0[name] + theta_1[name]) / 2)
    assert mixed is not zero_shot
    assert all(torch.equal(before[k], v) for k, v in zero_shot.state_dict().items())


def test_different_configs_are_refused_with_the_differences_named(make_model):
    zero_shot = make_model(seed=0)
    wider = make_model(seed=0, embed_dim=32)
    with pytest.raises(ValueError, match="embed_dim: 16 vs 32"):
        interpolate_weights(zero_shot, wider, 0.5)
    with pytest.raises(ValueError, match=r"alpha must be in \[0, 1\]"):
        interpolate_weights(zero_shot, make_model(seed=1), 1.5)


def test_metadata_only_config_differences_are_accepted(make_model):
    zero_shot, fine_tuned = make_model(seed=0), make_model(seed=1)
    fine_tuned.config._name_or_path = "runs/fine-tuned"
    interpolate_weights(zero_shot, fine_tuned, 0.3)


def test_evaluate_wise_ft_reports_each_alpha(make_model, processor, tiny_dataset, class_names, tmp_path):
    zero_shot, fine_tuned = make_model(seed=0), make_model(seed=1)
    results = evaluate_wise_ft(zero_shot, fine_tuned, processor, tiny_dataset, class_names, tmp_path,
                               alphas=(0.0, 0.5, 1.0), tasks=("retrieval",), batch_size=16)
    assert list(results) == [0.0, 0.5, 1.0]
    for alpha in ("0", "0.5", "1"):
        assert (tmp_path / f"alpha_{alpha}" / "eval_results.json").is_file()
    summary = json.loads((tmp_path / "wise_ft_results.json").read_text())
    assert summary["0.5"] == results[0.5]
    from train.evaluation import run_evaluation

    endpoint = run_evaluation(fine_tuned, processor, tiny_dataset, class_names, tmp_path / "ft", ("retrieval",), 16)
    assert results[1.0] == endpoint
