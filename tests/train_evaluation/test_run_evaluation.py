"""`run_evaluation` end to end: a tiny random SarclipModel on a small synthetic SAR set."""

import json

import pytest

from train.evaluation import run_evaluation

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
ALL_TASKS = ("retrieval", "zero_shot", "linear_probe", "feature_plot")


def test_all_tasks_end_to_end(make_model, processor, tiny_dataset, class_names, tmp_path):
    model = make_model().train()
    results = run_evaluation(model, processor, tiny_dataset, class_names, tmp_path, ALL_TASKS, batch_size=8)
    assert model.training  # restored after evaluation

    assert json.loads((tmp_path / "eval_results.json").read_text()) == results
    assert all(isinstance(value, float) for name, value in results.items() if name != "collapsed")
    assert results["collapsed"] is False and -1 <= results["image_feature_cosine"] <= 1
    for name in ("zero_shot_confusion_matrix.png", "tsne_test.png", "retrieval_recall_at_k.png"):
        assert (tmp_path / name).read_bytes()[:8] == PNG_SIGNATURE and (tmp_path / name).stat().st_size > 5000
    assert "Mean Recall" in (tmp_path / "retrieval_table.md").read_text()

    expected = {f"retrieval/{d}_R@{k}" for d in ("i2t", "t2i") for k in (1, 5, 10)} | {
        "retrieval/mean_recall", "zero_shot/top1", "zero_shot/top3", "zero_shot/mean_class_accuracy",
        "linear_probe/accuracy", "linear_probe/weight_decay",
    } | {f"zero_shot/class_accuracy/{name}" for name in class_names}
    assert expected <= set(results)
    distinct = len({caption for captions in tiny_dataset["test"]["captions"] for caption in captions})
    assert results["retrieval/num_images"] == 15.0 and results["retrieval/num_texts"] == distinct < 75  # templates repeat
    assert results["retrieval/i2t_R@1"] <= results["retrieval/i2t_R@5"] <= results["retrieval/i2t_R@10"] <= 100
    assert results["retrieval/t2i_R@1"] <= results["retrieval/t2i_R@5"] <= results["retrieval/t2i_R@10"] <= 100
    recalls = [results[f"retrieval/{d}_R@{k}"] for d in ("i2t", "t2i") for k in (1, 5, 10)]
    assert results["retrieval/mean_recall"] == pytest.approx(sum(recalls) / 6)
    assert results["zero_shot/top1"] <= results["zero_shot/top3"]
    assert 0 <= results["linear_probe/accuracy"] <= 100


def test_same_model_gives_the_same_results(make_model, processor, tiny_dataset, class_names, tmp_path):
    tasks = ("retrieval", "zero_shot", "linear_probe")
    first = run_evaluation(make_model(), processor, tiny_dataset, class_names, tmp_path / "a", tasks, batch_size=16)
    second = run_evaluation(make_model(), processor, tiny_dataset, class_names, tmp_path / "b", tasks, batch_size=5)
    assert first.keys() == second.keys()
    for name, value in first.items():
        # the feature spread sums float32 features, whose last bits depend on the batch size
        assert second[name] == pytest.approx(value, abs=1e-6 if "feature_cosine" in name else 1e-9), name


def test_retrieval_only_needs_no_labels_or_class_names(make_model, processor, tiny_dataset, tmp_path):
    captions_only = {"test": tiny_dataset["test"].select_columns(["image", "captions"])}
    results = run_evaluation(make_model(), processor, captions_only, None, tmp_path, ("retrieval",))
    assert set(results) == {f"retrieval/{name}" for name in (
        "i2t_R@1", "i2t_R@5", "i2t_R@10", "t2i_R@1", "t2i_R@5", "t2i_R@10", "mean_recall", "num_images", "num_texts",
        "images_without_captions")} | {"image_feature_cosine", "text_feature_cosine", "collapsed"}
    with pytest.raises(ValueError, match="need class_names"):
        run_evaluation(make_model(), processor, tiny_dataset, None, tmp_path, ("zero_shot",))


def test_bad_inputs_are_reported(make_model, processor, tiny_dataset, class_names, tmp_path):
    model = make_model()
    with pytest.raises(ValueError, match="unknown or no evaluation tasks"):
        run_evaluation(model, processor, tiny_dataset, class_names, tmp_path, ("retrieval", "captioning"))
    with pytest.raises(ValueError, match="3 class names given but the 'test' label feature has 5 classes"):
        run_evaluation(model, processor, tiny_dataset, class_names[:3], tmp_path, ("zero_shot",))
    no_captions = {"test": tiny_dataset["test"].remove_columns("captions")}
    with pytest.raises(ValueError, match=r"'test' split lacks columns \['captions'\]"):
        run_evaluation(model, processor, no_captions, class_names, tmp_path, ("retrieval",))
    with pytest.raises(ValueError, match="needs a 'train' split"):
        run_evaluation(model, processor, {"test": tiny_dataset["test"]}, class_names, tmp_path, ("linear_probe",))


def test_recall_curve_reads_the_recalls_at_every_k(tmp_path):
    from PIL import Image

    from train.evaluation.retrieval import retrieval_recalls
    from train.evaluation.retrieval_plot import CURVE_KS, save_recall_curve
    import torch

    scores = torch.eye(12) + 0.01 * torch.arange(12.0)  # every pair ranks first: recall 100 at every K
    recalls = retrieval_recalls(scores, list(range(12)), CURVE_KS)
    assert recalls["i2t_R@1"] == recalls["t2i_R@10"] == 100.0
    save_recall_curve(recalls, tmp_path / "curve.png")
    assert Image.open(tmp_path / "curve.png").size == (600, 400)
    with pytest.raises(KeyError):
        save_recall_curve({"i2t_R@1": 50.0}, tmp_path / "short.png")  # a curve needs every K
