"""The local `evaluate` metric modules: offline loading and exact values on constructed inputs."""

import json
import os
import subprocess
import sys

import pytest

from train.evaluation.metrics import METRICS_DIR, load_metric


def test_metric_modules_load_offline_in_a_fresh_process(tmp_path):
    """`evaluate.load(<folder>)` with HF_HUB_OFFLINE=1, a fresh module cache and no network: both modules work."""
    script = f"""
import json, evaluate
retrieval = evaluate.load({str(METRICS_DIR / "sar_retrieval")!r}, keep_in_memory=True)
classification = evaluate.load({str(METRICS_DIR / "sar_classification")!r}, keep_in_memory=True)
print(json.dumps([
    retrieval.compute(predictions=[[2, 0, 1], [1, 2, 0]], references=[[0], [1]], ks=(1, 2)),
    classification.compute(predictions=[[0, 1], [0, 1]], references=[0, 1], num_classes=2, top_k=(1,)),
]))
"""
    env = dict(os.environ, HF_HUB_OFFLINE="1", HF_EVALUATE_OFFLINE="1", HF_DATASETS_OFFLINE="1",
               HF_HOME=str(tmp_path / "hf_home"), HF_MODULES_CACHE=str(tmp_path / "modules"))
    done = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True, text=True,
                          timeout=120, check=False)
    assert done.returncode == 0, done.stderr
    retrieval, classification = json.loads(done.stdout.strip().splitlines()[-1])
    assert retrieval == {"R@1": 50.0, "R@2": 100.0}
    assert classification["top1"] == 50.0
    assert classification["confusion_matrix"] == [[1, 0], [1, 0]]
    assert (tmp_path / "modules").is_dir()  # the module was copied into the fresh cache, not fetched


def test_retrieval_recall_exact_values():
    metric = load_metric("sar_retrieval")
    ranked = [[3, 1, 2, 0], [0, 1, 2, 3], [2, 3, 0, 1], [1, 0, 3, 2]]
    relevant = [[0], [0], [1, 3], [2]]  # first relevant at rank 3, 0, 1, 3
    assert metric.compute(predictions=ranked, references=relevant, ks=(1, 2, 3, 4)) == {
        "R@1": 25.0, "R@2": 50.0, "R@3": 50.0, "R@4": 100.0,
    }


def test_retrieval_recall_rejects_truncated_rankings_and_empty_references():
    metric = load_metric("sar_retrieval")
    with pytest.raises(ValueError, match="fewer than K=5"):
        metric.compute(predictions=[[1, 2]], references=[[0]], ks=(1, 5))
    with pytest.raises(ValueError, match="no relevant candidate"):
        metric.compute(predictions=[[1, 2]], references=[[]], ks=(1,))


def test_classification_exact_values():
    metric = load_metric("sar_classification")
    ranked = [[0, 1, 2, 3], [2, 1, 0, 3], [1, 2, 3, 0], [3, 0, 1, 2], [2, 3, 1, 0], [1, 0, 2, 3]]
    labels = [0, 1, 1, 2, 2, 0]
    results = metric.compute(predictions=ranked, references=labels, num_classes=4, top_k=(1, 3))
    assert results["top1"] == pytest.approx(100 * 3 / 6)  # examples 0, 2, 4
    assert results["top3"] == pytest.approx(100 * 5 / 6)  # all but example 3 (label 2 ranked last)
    assert results["per_class_accuracy"] == [50.0, 50.0, 50.0, None]  # class 3 has no examples
    assert results["mean_class_accuracy"] == 50.0
    assert results["confusion_matrix"] == [[1, 1, 0, 0], [0, 1, 1, 0], [0, 0, 1, 1], [0, 0, 0, 0]]


def test_classification_skips_k_above_num_classes_and_checks_labels():
    metric = load_metric("sar_classification")
    results = metric.compute(predictions=[[1, 0], [1, 0]], references=[1, 0], num_classes=2, top_k=(1, 3))
    assert "top3" not in results and results["top1"] == 50.0
    with pytest.raises(ValueError, match="outside 0..1"):
        metric.compute(predictions=[[1, 0]], references=[2], num_classes=2, top_k=(1,))


def test_unknown_local_metric_names_the_folder():
    with pytest.raises(ValueError, match="no local metric module 'bleu'"):
        load_metric("bleu")
