"""`run_evaluation`: every evaluation of a dual-encoder model (SARCLIP, or SAR-KnowLIP's ITC towers) on a train/test `DatasetDict` in one call.

Test-split image features are computed once and shared by retrieval, zero-shot, the linear probe and the t-SNE plot;
the linear probe also encodes the train split once. Call it on the main process only.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Sequence
from pathlib import Path

import datasets
import torch

from sar_utils.atomic import write_json

from ..common.collapse_guard import DEFAULT_COSINE, feature_spread
from .encode import encode_images, encode_texts, eval_mode
from .feature_plot import save_tsne_plot
from .linear_probe import evaluate_linear_probe
from .retrieval import recall_table_row, retrieval_recalls_from_features, unique_captions
from .retrieval_plot import CURVE_KS, save_recall_curve
from .zero_shot import evaluate_zero_shot

logger = logging.getLogger(__name__)

TASKS = ("retrieval", "zero_shot", "linear_probe", "feature_plot")
RECALL_CURVE = "retrieval_recall_at_k.png"
RESULTS_FILE = "eval_results.json"
_COLUMNS = {"retrieval": ("image", "captions"), "zero_shot": ("image", "label"),
            "linear_probe": ("image", "label"), "feature_plot": ("image", "label")}


def _check_inputs(dataset_dict, class_names: Sequence[str] | None, tasks: Sequence[str]) -> None:
    unknown = [task for task in tasks if task not in TASKS]
    if unknown or not tasks:
        raise ValueError(f"unknown or no evaluation tasks {list(tasks)} (choose from {TASKS})")
    splits = ["test"] + (["train"] if "linear_probe" in tasks else [])
    for split in splits:
        if split not in dataset_dict:
            raise ValueError(f"run_evaluation needs a {split!r} split, the dataset has {list(dataset_dict)}")
        columns = dataset_dict[split].column_names
        missing = sorted({c for task in tasks for c in _COLUMNS[task] if c not in columns})
        if missing:
            raise ValueError(f"{split!r} split lacks columns {missing} needed by tasks {list(tasks)} (has {columns})")
        if len(dataset_dict[split]) == 0:
            raise ValueError(f"the {split!r} split is empty")
        label = dataset_dict[split].features.get("label")
        needs_labels = any("label" in _COLUMNS[task] for task in tasks)
        if needs_labels and class_names is None:
            raise ValueError(f"tasks {list(tasks)} need class_names (only retrieval runs without them)")
        if needs_labels and isinstance(label, datasets.ClassLabel) and label.num_classes != len(class_names):
            raise ValueError(f"{len(class_names)} class names given but the {split!r} label feature has "
                             f"{label.num_classes} classes ({label.names})")


def run_evaluation(
    model: torch.nn.Module,
    processor,
    dataset_dict,
    class_names: Sequence[str] | None,
    out_dir: str | Path,
    tasks: Sequence[str] = ("retrieval", "zero_shot", "linear_probe"),
    batch_size: int = 64,
    collapse_cosine: float = DEFAULT_COSINE,
) -> dict[str, float]:
    """Evaluate `model` (SarclipModel or SarclipEnsemble) and return flat metrics (percent), also in
    out_dir/eval_results.json.

    Args:
        dataset_dict: "test" (and "train" for the linear probe) with columns image, captions (list[str]), label.
        class_names: caption words of the label ids, in label order ("storage tank", "T-72 tank"); used verbatim in
            the zero-shot prompts. May be None when only "retrieval" runs.
        tasks: any of "retrieval" (test i2t/t2i R@1/5/10 and mean recall, out_dir/retrieval_table.md),
            "zero_shot" (prompt-ensemble top-1/top-3, per-class accuracy, out_dir/zero_shot_confusion_matrix.png),
            "linear_probe" (fit on train features, test accuracy), "feature_plot" (out_dir/tsne_test.png).
            top3 is reported only with 3 classes or more.
        collapse_cosine: every evaluation also reports the feature spread, `image_feature_cosine` and
            `text_feature_cosine` (mean pairwise cosine of the test images' / distinct test captions' embeddings,
            `train.common.collapse_guard.feature_spread`), and `collapsed` (bool): true, with a warning line, when
            the image cosine exceeds this threshold or the features are not finite (a collapsed encoder maps every
            chip to one point; its other metrics then mean nothing).

    Runs in the model's own device and dtype; for mixed precision call it inside `accelerator.autocast()` (no
    autocast context is opened here, so an outer one stays in effect).
    """
    tasks = tuple(tasks)
    _check_inputs(dataset_dict, class_names, tasks)
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    test = dataset_dict["test"]
    results: dict[str, float] = {}
    with eval_mode(model):
        test_features = encode_images(model, processor, test["image"], batch_size)
        if not torch.isfinite(test_features).all():  # a NaN model: no task can run; report the collapse and stop
            results = feature_spread_results(test_features, None, collapse_cosine)
            write_json(out_dir / RESULTS_FILE, results, indent=2)
            return results
        text_features = None
        if "retrieval" in tasks:
            texts, text_to_image = unique_captions(test["captions"])
            text_features = encode_texts(model, processor, texts, batch_size)
            retrieval = retrieval_recalls_from_features(test_features, text_features, text_to_image)
            (out_dir / "retrieval_table.md").write_text(recall_table_row(retrieval) + "\n")
            save_recall_curve(retrieval_recalls_from_features(test_features, text_features, text_to_image, CURVE_KS),
                              out_dir / RECALL_CURVE, f"retrieval, {len(test)} images, {len(texts)} texts")
            results.update({f"retrieval/{name}": value for name, value in retrieval.items()})
        test_labels = list(test["label"]) if "label" in test.column_names else None
        if "zero_shot" in tasks:
            results.update(
                evaluate_zero_shot(model, processor, test_features, test_labels, class_names, out_dir,
                                   batch_size=batch_size)
            )
        if "linear_probe" in tasks:
            train = dataset_dict["train"]
            train_features = encode_images(model, processor, train["image"], batch_size)
            results.update(
                evaluate_linear_probe(train_features, list(train["label"]), test_features, test_labels,
                                      len(class_names))
            )
        if "feature_plot" in tasks:
            save_tsne_plot(test_features, test_labels, class_names, out_dir / "tsne_test.png",
                           title="t-SNE of test image features")
        if text_features is None and "captions" in test.column_names:
            text_features = encode_texts(model, processor, unique_captions(test["captions"])[0], batch_size)
    results = {name: float(value) for name, value in sorted(results.items())}
    results.update(feature_spread_results(test_features, text_features, collapse_cosine))
    write_json(out_dir / RESULTS_FILE, results, indent=2)
    logger.info("evaluation results (%s) written to %s", ", ".join(tasks), out_dir / RESULTS_FILE)
    return results


def feature_spread_results(image_features: torch.Tensor, text_features: torch.Tensor | None,
                           threshold: float = DEFAULT_COSINE) -> dict:
    """`image_feature_cosine`, `text_feature_cosine` (when there are 2 texts or more; null when not finite) and
    `collapsed`; a collapsed model (image cosine above `threshold`, or non-finite features) is also reported as a
    logged warning (on stderr without a logging configuration)."""
    image = feature_spread(image_features)
    results = {"image_feature_cosine": image if math.isfinite(image) else None}
    if text_features is not None and text_features.shape[0] >= 2:
        text = feature_spread(text_features)
        results["text_feature_cosine"] = text if math.isfinite(text) else None
    collapsed = not math.isfinite(image) or image > threshold
    results["collapsed"] = collapsed
    if not math.isfinite(image):
        message = ("warning: collapsed model: its test image embeddings are not finite (NaN weights?); no task was "
                   "evaluated (README: Collapse guard)")
    else:
        message = (f"warning: collapsed model: the mean pairwise cosine of the test image embeddings is {image:.5f} "
                   f"(threshold {threshold}): it maps every chip to nearly one point, so its other metrics mean "
                   "nothing (README: Collapse guard)")
    if collapsed:
        logger.warning(message)
    return results


__all__ = ["RESULTS_FILE", "TASKS", "feature_spread_results", "run_evaluation"]
