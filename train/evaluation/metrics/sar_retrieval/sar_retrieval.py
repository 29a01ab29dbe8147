"""Recall@K for cross-modal retrieval (SARCLIP paper, eq. 5), as a local `evaluate` module.

Load it with ``evaluate.load("<path to this folder>")``: no Hub access is needed. The module only uses numpy so that
it can be copied or pushed next to a model on its own.
"""

import datasets
import evaluate
import numpy as np

_DESCRIPTION = """
Recall@K of a retrieval run (SARCLIP eq. 5): R@K = 1/N sum_i I[some relevant item of query i is in its top K], in
percent. Each query gives its retrieved candidates, best first (at least max(ks) of them, or all candidates), and the
candidates that count as correct (an image with several captions: any of them; a caption: its own image).
"""

_KWARGS_DESCRIPTION = """
Args:
    predictions: per query, candidate ids ranked best first (list of int), at least max(ks) long unless it lists
        every candidate.
    references: per query, the ids of the relevant candidates (list of int, not empty).
    ks: the K values (default (1, 5, 10)).
Returns:
    {"R@1": float, "R@5": float, "R@10": float} in percent (one key per K).
Example:
    >>> metric = evaluate.load("train/evaluation/metrics/sar_retrieval")
    >>> metric.compute(predictions=[[2, 0, 1], [1, 2, 0]], references=[[0], [1]], ks=(1, 2))
    {'R@1': 50.0, 'R@2': 100.0}
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
class SarRetrieval(evaluate.Metric):
    def _info(self):
        return evaluate.MetricInfo(
            description=_DESCRIPTION,
            citation=_CITATION,
            inputs_description=_KWARGS_DESCRIPTION,
            features=datasets.Features(
                {
                    "predictions": datasets.List(datasets.Value("int64")),
                    "references": datasets.List(datasets.Value("int64")),
                }
            ),
        )

    def _compute(self, predictions, references, ks=(1, 5, 10)):
        if len(predictions) == 0:
            raise ValueError("sar_retrieval: no queries")
        ks = sorted(int(k) for k in ks)
        if ks[0] < 1:
            raise ValueError(f"sar_retrieval: K must be >= 1, got {ks}")
        hits = np.zeros(len(ks))
        for query, (ranked, relevant) in enumerate(zip(predictions, references)):
            if len(relevant) == 0:
                raise ValueError(f"sar_retrieval: query {query} has no relevant candidate")
            relevant = set(relevant)
            # 0-based rank of the first relevant candidate; len(ranked) if none was retrieved
            first = next((rank for rank, item in enumerate(ranked) if item in relevant), len(ranked))
            if first == len(ranked) and len(ranked) < ks[-1]:
                raise ValueError(
                    f"sar_retrieval: query {query} lists {len(ranked)} candidates, fewer than K={ks[-1]}, and none "
                    "of them is relevant (pass at least max(ks) ranked candidates per query)"
                )
            hits += [first < k for k in ks]
        return {f"R@{k}": float(100.0 * h / len(predictions)) for k, h in zip(ks, hits)}
