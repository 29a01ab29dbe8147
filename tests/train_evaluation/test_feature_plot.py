"""t-SNE feature plot (paper Fig. 5)."""

import numpy as np
import pytest

from train.evaluation.feature_plot import save_tsne_plot, tsne_embedding

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def _clusters(seed=0):
    rng = np.random.default_rng(seed)
    labels = np.repeat(np.arange(3), 10)
    features = np.eye(3, 8)[labels] * 5 + rng.normal(0, 0.1, (30, 8))
    return features.astype(np.float32), labels


def test_png_is_written(tmp_path):
    features, labels = _clusters()
    path = save_tsne_plot(features, labels, ["ship", "tank", "bridge"], tmp_path / "plots" / "tsne.png")
    assert path.read_bytes()[:8] == PNG_SIGNATURE and path.stat().st_size > 5000


def test_subsampling_keeps_max_points(tmp_path):
    features, labels = _clusters()
    path = save_tsne_plot(features, labels, ["ship", "tank", "bridge"], tmp_path / "tsne.png", max_points=12)
    assert path.stat().st_size > 5000


def test_tsne_keeps_well_separated_clusters_apart():
    features, labels = _clusters()
    coords = tsne_embedding(features)
    centres = np.stack([coords[labels == c].mean(axis=0) for c in range(3)])
    spread = max(np.linalg.norm(coords[labels == c] - centres[c], axis=1).max() for c in range(3))
    gaps = [np.linalg.norm(centres[a] - centres[b]) for a in range(3) for b in range(a + 1, 3)]
    assert min(gaps) > spread


def test_bad_input(tmp_path):
    with pytest.raises(ValueError, match="2 feature rows but 3 labels"):
        save_tsne_plot(np.zeros((2, 4)), [0, 1, 2], ["a", "b", "c"], tmp_path / "x.png")
    with pytest.raises(ValueError, match="at least 3 points"):
        tsne_embedding(np.zeros((2, 4)))
