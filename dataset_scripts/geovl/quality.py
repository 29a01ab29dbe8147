"""Quality screening of SAR tiles: GLCM texture statistics + a KNN filter (paper 3.1, step 5).

The paper names the ingredients (GLCM [Soh & Tsatsoulis 1999], statistical features, a KNN-based filter
removing "low-information or structurally deficient samples") but no constants. Our rule, in order:

1. ``nodata``: more than ``max_nodata_fraction`` of the tile is nodata / outside the scene;
2. ``low_information``: GLCM entropy below ``min_entropy_bits`` or grey-level std below ``min_std``
   (flat tiles: calm water, saturated or empty areas);
3. ``knn_outlier``: among the remaining tiles of the same scale, the z-scored texture features are
   compared with a k-nearest-neighbour search; a tile whose mean distance to its k nearest neighbours is
   above the Tukey fence ``Q3 + iqr_factor * IQR`` of those distances is structurally unlike the rest
   of the corpus (artefacts, stripes, partly corrupted data) and is rejected. With fewer than
   ``2 * k`` candidates the KNN step is skipped and that is reported.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field

import numpy as np
from sklearn.neighbors import NearestNeighbors

GLCM_LEVELS = 32  # 8-bit grey levels quantised to 32 so that small tiles still fill the matrix
# Pixel distance 1 at 0, 45, 90 and 135 degrees as (d_row, d_col); the matrix is made symmetric.
GLCM_OFFSETS = ((0, 1), (-1, 1), (-1, 0), (-1, -1))
FEATURE_NAMES = ("contrast", "homogeneity", "energy", "entropy", "correlation", "mean", "std")


def glcm(gray: np.ndarray, levels: int = GLCM_LEVELS, offsets=GLCM_OFFSETS) -> np.ndarray:
    """Symmetric, normalised grey-level co-occurrence matrix of a 2-D uint8 image, averaged over ``offsets``."""
    if gray.ndim != 2 or gray.dtype != np.uint8:
        raise ValueError(f"GLCM needs a 2-D uint8 image, got shape {gray.shape} dtype {gray.dtype}")
    q = (gray.astype(np.int64) * levels) // 256
    h, w = q.shape
    total = np.zeros(levels * levels, dtype=np.float64)
    for dr, dc in offsets:
        a = q[max(0, -dr) : h - max(0, dr), max(0, -dc) : w - max(0, dc)]
        b = q[max(0, dr) : h - max(0, -dr), max(0, dc) : w - max(0, -dc)]
        if a.size == 0:
            raise ValueError(f"image of shape {gray.shape} is too small for GLCM offset {(dr, dc)}")
        counts = np.bincount((a * levels + b).ravel(), minlength=levels * levels).reshape(levels, levels)
        counts = counts + counts.T
        total += (counts / counts.sum()).ravel()
    return (total / len(offsets)).reshape(levels, levels)


def glcm_statistics(p: np.ndarray) -> dict[str, float]:
    """Haralick statistics of a normalised GLCM, as defined by Soh & Tsatsoulis (1999).

    energy = sum P^2 (angular second moment); entropy in bits; correlation of a constant image
    (zero variance) is defined as 1, the scikit-image convention.
    """
    levels = p.shape[0]
    i, j = np.meshgrid(np.arange(levels), np.arange(levels), indexing="ij")
    mu_i, mu_j = (i * p).sum(), (j * p).sum()
    sigma_i = np.sqrt((((i - mu_i) ** 2) * p).sum())
    sigma_j = np.sqrt((((j - mu_j) ** 2) * p).sum())
    nonzero = p[p > 0]
    if sigma_i * sigma_j > 1e-12:
        correlation = float((((i - mu_i) * (j - mu_j)) * p).sum() / (sigma_i * sigma_j))
    else:
        correlation = 1.0
    return {
        "contrast": float((((i - j) ** 2) * p).sum()),
        "homogeneity": float((p / (1.0 + (i - j) ** 2)).sum()),
        "energy": float((p**2).sum()),
        "entropy": float(-(nonzero * np.log2(nonzero)).sum()),
        "correlation": correlation,
    }


def texture_features(gray: np.ndarray) -> dict[str, float]:
    """GLCM statistics plus the grey-level mean and standard deviation (0..255) of a uint8 tile."""
    return {**glcm_statistics(glcm(gray)), "mean": float(gray.mean()), "std": float(gray.std())}


@dataclass(frozen=True)
class QualityConfig:
    max_nodata_fraction: float = 0.1
    min_entropy_bits: float = 2.0
    min_std: float = 4.0
    knn_k: int = 5
    knn_iqr_factor: float = 1.5


@dataclass
class QualityResult:
    """Per-tile decisions (``None`` = kept, else the rejection reason), features and a summary."""

    reasons: list[str | None]
    features: list[dict[str, float]]
    knn_skipped: bool = False
    counts: dict = field(init=False)

    def __post_init__(self):
        rejected = Counter(r for r in self.reasons if r is not None)
        self.counts = {
            "screened": len(self.reasons),
            "kept": self.reasons.count(None),
            "rejected": dict(sorted(rejected.items())),
            "knn_skipped": self.knn_skipped,
        }


def screen_tiles(
    grays: list[np.ndarray], nodata_fractions: list[float], config: QualityConfig = QualityConfig()
) -> QualityResult:
    """Apply the nodata, low-information and KNN-outlier rules (module docstring) to tiles of one scale."""
    features = [texture_features(g) for g in grays]
    reasons: list[str | None] = []
    for feats, nodata in zip(features, nodata_fractions, strict=True):
        if nodata > config.max_nodata_fraction:
            reasons.append("nodata")
        elif feats["entropy"] < config.min_entropy_bits or feats["std"] < config.min_std:
            reasons.append("low_information")
        else:
            reasons.append(None)
    candidates = [i for i, r in enumerate(reasons) if r is None]
    if len(candidates) < 2 * config.knn_k:
        return QualityResult(reasons, features, knn_skipped=True)
    x = np.array([[features[i][name] for name in FEATURE_NAMES] for i in candidates])
    std = x.std(axis=0)
    z = (x - x.mean(axis=0)) / np.where(std > 0, std, 1.0)
    distances, _ = NearestNeighbors(n_neighbors=config.knn_k + 1).fit(z).kneighbors(z)
    score = distances[:, 1:].mean(axis=1)  # column 0 is the tile itself
    q1, q3 = np.percentile(score, [25, 75])
    fence = q3 + config.knn_iqr_factor * (q3 - q1)
    for i, s in zip(candidates, score):
        if s > fence:
            reasons[i] = "knn_outlier"
    return QualityResult(reasons, features)
