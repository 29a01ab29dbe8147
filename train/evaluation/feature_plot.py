"""t-SNE plot of image features coloured by class (SARCLIP paper Fig. 5)."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch

logger = logging.getLogger(__name__)

MAX_POINTS = 5000  # t-SNE is O(N log N) per iteration; larger sets are subsampled (seeded) and the count is logged


def tsne_embedding(features: torch.Tensor | np.ndarray, seed: int = 0) -> np.ndarray:
    """(N, D) features -> (N, 2) t-SNE coordinates (sklearn, PCA init, cosine metric).

    Perplexity 30 (sklearn's default), lowered to (N - 1) / 3 for small N: Barnes-Hut t-SNE looks at 3 x perplexity
    neighbours, and a perplexity near N blurs every cluster into one.
    """
    from sklearn.manifold import TSNE

    features = np.asarray(features, dtype=np.float32)
    if features.shape[0] < 3:
        raise ValueError(f"t-SNE needs at least 3 points, got {features.shape[0]}")
    perplexity = min(30.0, (features.shape[0] - 1) / 3)
    return TSNE(n_components=2, perplexity=perplexity, init="pca", metric="cosine", random_state=seed).fit_transform(
        features
    )


def save_tsne_plot(
    features: torch.Tensor | np.ndarray,
    labels: Sequence[int],
    class_names: Sequence[str],
    path: str | Path,
    title: str = "t-SNE of image features",
    seed: int = 0,
    max_points: int = MAX_POINTS,
) -> Path:
    """Scatter plot of the t-SNE of `features`, one colour per class, saved as PNG; returns the path."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    features, labels = np.asarray(features, dtype=np.float32), np.asarray(labels, dtype=np.int64)
    if features.shape[0] != labels.shape[0]:
        raise ValueError(f"{features.shape[0]} feature rows but {labels.shape[0]} labels")
    if features.shape[0] > max_points:
        keep = np.sort(np.random.default_rng(seed).choice(features.shape[0], max_points, replace=False))
        logger.info("t-SNE plot: %d of %d points (seeded subsample)", max_points, features.shape[0])
        title = f"{title} ({max_points} of {features.shape[0]} points)"
        features, labels = features[keep], labels[keep]
    coords = tsne_embedding(features, seed)
    colours = plt.get_cmap("tab20" if len(class_names) > 10 else "tab10")
    figure, axes = plt.subplots(figsize=(10, 6))
    for index, name in enumerate(class_names):
        members = labels == index
        if members.any():
            axes.scatter(*coords[members].T, s=6, color=colours(index % colours.N), label=name)
    axes.set_xticks([])
    axes.set_yticks([])
    axes.set_title(title)
    axes.legend(markerscale=3, fontsize="small", loc="upper left", bbox_to_anchor=(1.01, 1.0))
    figure.tight_layout()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path, dpi=100, bbox_inches="tight")
    plt.close(figure)
    return path


__all__ = ["MAX_POINTS", "save_tsne_plot", "tsne_embedding"]
