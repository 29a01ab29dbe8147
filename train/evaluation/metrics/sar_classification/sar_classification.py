"""Top-K accuracy, per-class accuracy and confusion matrix for SAR target recognition, as a local `evaluate` module.

Load it with ``evaluate.load("<path to this folder>")``: no Hub access is needed. The module only uses numpy so that
it can be copied or pushed next to a model on its own.
"""

import datasets
import evaluate
import numpy as np

_DESCRIPTION = """
Classification metrics for zero-shot, prompt and linear-probe SAR target recognition (SARCLIP eq. 6), in percent:
top-K accuracy (a prediction is correct at K when the true class is among its K best-ranked classes), per-class
accuracy (top-1 recall of each class) with its mean over the classes that have examples, and the top-1 confusion
matrix (rows: true class, columns: predicted class, counts).
"""

_KWARGS_DESCRIPTION = """
Args:
    predictions: per example, class ids ranked best first (list of int; at least max(top_k) long).
    references: per example, the true class id (int).
    num_classes: number of classes C (ids are 0..C-1).
    top_k: the K values of top-K accuracy (default (1, 3)); a K larger than C is not reported.
Returns:
    {"top1": float, "top3": float, "per_class_accuracy": list[float | None] (None: class without examples),
     "mean_class_accuracy": float, "confusion_matrix": list[list[int]]}
Example:
    >>> metric = evaluate.load("train/evaluation/metrics/sar_classification")
    >>> metric.compute(predictions=[[0, 1], [0, 1]], references=[0, 1], num_classes=2, top_k=(1,))["top1"]
    50.0
"""

_CITATION = """
@article{ma2025sarclip,
  title={SARCLIP: A Vision Language Foundation Model for Semantic Understanding and Target Recognition in SAR Imagery},
  author={Ma, Qiwei and Wang, Zhiyu and Liu, Wang and Lu, Xukun and Deng, Bin and Duan, Puhong and Kang, Xudong
          and Li, Shutao},
  year={2025}
}
"""


@evaluate.utils.file_utils.add_start_docstrings(_DESCRIPTION, _KWARGS_DESCRIPTION)
class SarClassification(evaluate.Metric):
    def _info(self):
        return evaluate.MetricInfo(
            description=_DESCRIPTION,
            citation=_CITATION,
            inputs_description=_KWARGS_DESCRIPTION,
            features=datasets.Features(
                {"predictions": datasets.List(datasets.Value("int64")), "references": datasets.Value("int64")}
            ),
        )

    def _compute(self, predictions, references, num_classes, top_k=(1, 3)):
        if len(references) == 0:
            raise ValueError("sar_classification: no examples")
        ks = sorted(int(k) for k in top_k if k <= num_classes)
        if not ks or ks[0] < 1:
            raise ValueError(f"sar_classification: no K in {tuple(top_k)} is between 1 and num_classes={num_classes}")
        references = np.asarray(references, dtype=np.int64)
        if references.min() < 0 or references.max() >= num_classes:
            raise ValueError(f"sar_classification: reference labels outside 0..{num_classes - 1}")
        short = [i for i, ranked in enumerate(predictions) if len(ranked) < max(ks)]
        if short:
            raise ValueError(
                f"sar_classification: {len(short)} predictions rank fewer than {max(ks)} classes (first: example "
                f"{short[0]})"
            )
        ranked = np.asarray([row[: max(ks)] for row in predictions], dtype=np.int64)
        if ranked.min() < 0 or ranked.max() >= num_classes:
            raise ValueError(f"sar_classification: predicted classes outside 0..{num_classes - 1}")
        correct_at = ranked == references[:, None]
        results = {f"top{k}": float(100.0 * correct_at[:, :k].any(axis=1).mean()) for k in ks}
        confusion = np.zeros((num_classes, num_classes), dtype=np.int64)
        np.add.at(confusion, (references, ranked[:, 0]), 1)
        support = confusion.sum(axis=1)
        per_class = [float(100.0 * confusion[c, c] / support[c]) if support[c] else None for c in range(num_classes)]
        results["per_class_accuracy"] = per_class
        results["mean_class_accuracy"] = float(np.mean([acc for acc in per_class if acc is not None]))
        results["confusion_matrix"] = confusion.tolist()
        return results
