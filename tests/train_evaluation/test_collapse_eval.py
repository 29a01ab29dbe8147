"""Evaluation reports the feature spread of the model and flags a collapsed one (every chip on one point, or
non-finite features) with a warning line and `collapsed: true` in eval_results.json."""

import json

import pytest
import torch

from train.evaluation import evaluate_model, run_evaluation


def _collapsed(model):
    """The image tower's last LayerNorm made constant: every image gets the same embedding, whatever the pixels."""
    with torch.no_grad():
        model.vision_model.post_layernorm.weight.zero_()
        model.vision_model.post_layernorm.bias.normal_(generator=torch.Generator().manual_seed(0))
    return model


def test_a_healthy_model_reports_its_spread_and_is_not_flagged(make_model, processor, tiny_dataset, class_names,
                                                               tmp_path, caplog):
    results = run_evaluation(make_model(), processor, tiny_dataset, class_names, tmp_path, ("zero_shot",))
    assert -1 <= results["image_feature_cosine"] < 0.999 and -1 <= results["text_feature_cosine"] < 1
    assert results["collapsed"] is False and "collapsed model" not in caplog.text
    assert json.loads((tmp_path / "eval_results.json").read_text())["collapsed"] is False


def test_a_collapsed_model_is_flagged(make_model, processor, tiny_dataset, tmp_path, caplog):
    results = evaluate_model(_collapsed(make_model()), processor, tiny_dataset, "train", "test", ["retrieval"],
                             tmp_path)
    assert results["image_feature_cosine"] == pytest.approx(1.0, abs=1e-6)
    assert results["collapsed"] is True
    saved = json.loads((tmp_path / "eval_results.json").read_text())
    assert saved["collapsed"] is True and saved["image_feature_cosine"] == pytest.approx(1.0, abs=1e-6)
    assert caplog.text.count("warning: collapsed model: the mean pairwise cosine of the test image embeddings is "
                             "1.00000") == 1
    # a lower threshold flags a model that is merely very concentrated; the healthy random one is not
    assert evaluate_model(make_model(), processor, tiny_dataset, "train", "test", ["retrieval"], tmp_path / "b",
                          collapse_cosine=0.999)["collapsed"] is False


def test_a_nan_model_is_reported_as_collapsed_not_a_crash(make_model, processor, tiny_dataset, class_names,
                                                           tmp_path, caplog):
    model = make_model()
    with torch.no_grad():
        model.vision_model.projection.weight.fill_(float("nan"))
    results = run_evaluation(model, processor, tiny_dataset, class_names, tmp_path, ("retrieval", "zero_shot"))
    assert results == {"image_feature_cosine": None, "collapsed": True}
    assert json.loads((tmp_path / "eval_results.json").read_text()) == results
    assert "warning: collapsed model: its test image embeddings are not finite" in caplog.text
