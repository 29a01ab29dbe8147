"""Recall@K of both retrieval directions for K = 1..10 as a PNG, beside `retrieval_table.md`."""

from __future__ import annotations

from pathlib import Path

from sar_utils.atomic import atomic_file

CURVE_KS = tuple(range(1, 11))


def save_recall_curve(recalls: dict[str, float], path: str | Path, title: str = "retrieval") -> None:
    """`recalls`: `retrieval_recalls(..., ks=CURVE_KS)` (keys `i2t_R@K`, `t2i_R@K`); written atomically."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, axes = plt.subplots(figsize=(6, 4))
    for direction, label in (("i2t", "image -> text"), ("t2i", "text -> image")):
        axes.plot(CURVE_KS, [recalls[f"{direction}_R@{k}"] for k in CURVE_KS], marker="o", label=label)
    axes.set_xlabel("K")
    axes.set_ylabel("Recall@K (%)")
    axes.set_xticks(CURVE_KS)
    axes.set_ylim(0, 100)
    axes.set_title(title)
    axes.grid(alpha=0.3)
    axes.legend()
    figure.tight_layout()
    with atomic_file(path) as tmp:
        figure.savefig(tmp, dpi=100)
    plt.close(figure)
