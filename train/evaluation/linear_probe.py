"""Linear probe (SARCLIP paper III-C.2, eqs. 2-4): a linear head with cross-entropy on frozen image features.

Choices (the paper trains the head "for 10,000 epochs" inside the wise-ft code and gives no optimiser or
regularisation):
- Features are the L2-normalised projected image embeddings (`encode_images`), computed once; they are standardised
  with the training statistics (folded into the returned `nn.Linear`, so it still is one linear layer on the features).
- The head is fitted full-batch with L-BFGS (strong-Wolfe line search, float32, at most `MAX_ITER` iterations) from
  zero weights: the problem is convex, so this reaches the optimum that many epochs of SGD/Adam approach,
  deterministically and in about a second per fit on a CPU for MSTAR-sized sets (CLIP's own linear probes use
  L-BFGS logistic regression as well).
- The loss is mean cross-entropy + weight_decay * ||W||^2 / 2 (bias not decayed). The weight decay is picked from
  `WEIGHT_DECAYS` by top-1 accuracy on a validation split carved from train (`VAL_FRACTION` of every class, seeded;
  ties go to the larger weight decay), then the head is refitted on the whole training split.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence

import numpy as np
import torch
import torch.nn.functional as F

from .metrics import load_metric

WEIGHT_DECAYS = (1e-6, 1e-5, 1e-4, 1e-3, 1e-2, 1e-1)
VAL_FRACTION = 0.2
MAX_ITER = 100  # L-BFGS iterations per fit: enough for the accuracy to settle; tiny weight decays on separable
# features would otherwise keep creeping towards an ever larger margin


@dataclasses.dataclass
class LinearProbeResult:
    head: torch.nn.Linear  # on the (un-standardised) features
    weight_decay: float
    val_accuracy: dict[float, float]  # weight decay -> validation top-1 (percent)
    num_train: int
    num_val: int


def fit_linear_head(
    features: torch.Tensor, labels: torch.Tensor, num_classes: int, weight_decay: float, max_iter: int = MAX_ITER
) -> torch.nn.Linear:
    """Full-batch L-BFGS fit of a linear classifier (see module docstring); returns a head on the raw features."""
    features = features.float()
    mean, std = features.mean(dim=0), features.std(dim=0).clamp_min(1e-12)
    standardised = (features - mean) / std
    weight = torch.zeros(num_classes, features.shape[1], requires_grad=True)
    bias = torch.zeros(num_classes, requires_grad=True)
    optimizer = torch.optim.LBFGS(
        [weight, bias], lr=1.0, max_iter=max_iter, history_size=10, line_search_fn="strong_wolfe"
    )

    def closure():
        optimizer.zero_grad()
        loss = F.cross_entropy(standardised @ weight.T + bias, labels) + weight_decay * weight.pow(2).sum() / 2
        loss.backward()
        return loss

    with torch.enable_grad():
        optimizer.step(closure)
    # no random init to overwrite: a probe must not draw from the global RNG (it runs inside seeded training runs)
    head = torch.nn.utils.skip_init(torch.nn.Linear, features.shape[1], num_classes)
    with torch.no_grad():
        folded = weight / std  # standardisation folded into the layer: W (x - m) / s + b
        head.weight.copy_(folded)
        head.bias.copy_(bias - folded @ mean)
    return head


def split_train_val(labels: np.ndarray, val_fraction: float = VAL_FRACTION, seed: int = 0):
    """Per-class seeded split of indices; a class with a single example stays in train only."""
    rng = np.random.default_rng(seed)
    train, val = [], []
    for label in np.unique(labels):
        members = rng.permutation(np.flatnonzero(labels == label))
        count = round(val_fraction * len(members)) if len(members) > 1 else 0
        count = min(max(count, 1 if len(members) > 1 else 0), len(members) - 1)
        val.extend(members[:count])
        train.extend(members[count:])
    return np.sort(np.asarray(train, dtype=np.int64)), np.sort(np.asarray(val, dtype=np.int64))


def predict_ranked(head: torch.nn.Linear, features: torch.Tensor, top_k: int) -> list[list[int]]:
    with torch.no_grad():
        logits = head(features.to(head.weight.dtype))
    return torch.sort(logits, dim=1, descending=True, stable=True).indices[:, :top_k].tolist()


def train_linear_probe(
    features: torch.Tensor,
    labels: Sequence[int],
    num_classes: int,
    weight_decays: Sequence[float] = WEIGHT_DECAYS,
    val_fraction: float = VAL_FRACTION,
    seed: int = 0,
) -> LinearProbeResult:
    """Pick the weight decay on a validation split of the training features, then refit on all of them."""
    labels_np = np.asarray(labels, dtype=np.int64)
    if len(labels_np) != features.shape[0]:
        raise ValueError(f"{features.shape[0]} feature rows but {len(labels_np)} labels")
    if labels_np.size == 0 or labels_np.min() < 0 or labels_np.max() >= num_classes:
        raise ValueError(f"linear probe: training labels must be in 0..{num_classes - 1} (and not empty)")
    labels_t = torch.from_numpy(labels_np)
    train_idx, val_idx = split_train_val(labels_np, val_fraction, seed)
    metric = load_metric("sar_classification")
    val_accuracy = {}
    if len(weight_decays) > 1:
        if len(val_idx) == 0:
            raise ValueError("linear probe: the training split is too small to carve a validation split")
        for weight_decay in weight_decays:
            head = fit_linear_head(features[train_idx], labels_t[train_idx], num_classes, weight_decay)
            val_accuracy[weight_decay] = metric.compute(
                predictions=predict_ranked(head, features[val_idx], 1),
                references=labels_np[val_idx].tolist(), num_classes=num_classes, top_k=(1,),
            )["top1"]
        best = max(val_accuracy.values())
        weight_decay = max(wd for wd, acc in val_accuracy.items() if acc == best)
    else:
        (weight_decay,) = weight_decays
    head = fit_linear_head(features, labels_t, num_classes, weight_decay)
    return LinearProbeResult(head, weight_decay, val_accuracy, len(train_idx), len(val_idx))


def evaluate_linear_probe(
    train_features: torch.Tensor,
    train_labels: Sequence[int],
    test_features: torch.Tensor,
    test_labels: Sequence[int],
    num_classes: int,
    weight_decays: Sequence[float] = WEIGHT_DECAYS,
) -> dict[str, float]:
    """Fit on train features, report test top-1 accuracy (percent) under "linear_probe/..."."""
    probe = train_linear_probe(train_features, train_labels, num_classes, weight_decays)
    results = load_metric("sar_classification").compute(
        predictions=predict_ranked(probe.head, test_features, 1),
        references=list(test_labels), num_classes=num_classes, top_k=(1,),
    )
    flat = {
        "linear_probe/accuracy": results["top1"],
        "linear_probe/mean_class_accuracy": results["mean_class_accuracy"],
        "linear_probe/weight_decay": probe.weight_decay,
    }
    if probe.val_accuracy:
        flat["linear_probe/val_accuracy"] = probe.val_accuracy[probe.weight_decay]
    return flat


__all__ = [
    "LinearProbeResult", "WEIGHT_DECAYS", "evaluate_linear_probe", "fit_linear_head", "predict_ranked",
    "split_train_val", "train_linear_probe",
]
