"""Linear probe: L-BFGS head on frozen features, weight-decay choice on a validation split of train."""

import numpy as np
import pytest
import torch

from train.evaluation.linear_probe import (
    evaluate_linear_probe,
    fit_linear_head,
    predict_ranked,
    split_train_val,
    train_linear_probe,
)


def _separable(num_per_class: int, num_classes: int = 4, dim: int = 12, seed: int = 0):
    """Class c: a cluster around 3 * e_c (unit-noise), offset so that standardisation matters."""
    generator = torch.Generator().manual_seed(seed)
    labels = torch.arange(num_classes).repeat_interleave(num_per_class)
    centres = 3.0 * torch.eye(num_classes, dim)
    features = centres[labels] + 0.3 * torch.randn(len(labels), dim, generator=generator) + 5.0
    return features, labels


def test_separable_features_reach_100_percent():
    train_x, train_y = _separable(20)
    test_x, test_y = _separable(10, seed=1)
    results = evaluate_linear_probe(train_x, train_y.tolist(), test_x, test_y.tolist(), num_classes=4)
    assert results["linear_probe/accuracy"] == 100.0
    assert results["linear_probe/val_accuracy"] == 100.0
    assert results["linear_probe/weight_decay"] == 0.1  # all tie on validation: the largest weight decay wins


def test_a_probe_leaves_the_global_random_state_as_it_was():
    """Probes run inside seeded training runs (`standardize: auto`): drawing from the global RNG there would change
    the run's LoRA initialisation."""
    features, labels = _separable(5)
    torch.manual_seed(0)
    before = torch.get_rng_state()
    train_linear_probe(features, labels.tolist(), 4)
    assert torch.equal(torch.get_rng_state(), before)


def test_head_works_on_raw_features():
    """Standardisation is folded into the returned layer: logits == W_std @ ((x - mean) / std) + b."""
    features, labels = _separable(5)
    head = fit_linear_head(features, labels, 4, weight_decay=1e-2)
    assert isinstance(head, torch.nn.Linear) and head.weight.shape == (4, 12)
    assert predict_ranked(head, features, 1) == [[label] for label in labels.tolist()]


def test_random_labels_weight_decay_is_chosen_on_validation():
    torch.manual_seed(0)
    features = torch.randn(60, 8)
    labels = torch.randint(0, 3, (60,))
    probe = train_linear_probe(features, labels.tolist(), 3, weight_decays=(1e-4, 1.0))
    assert set(probe.val_accuracy) == {1e-4, 1.0}
    best = max(probe.val_accuracy.values())
    assert probe.val_accuracy[probe.weight_decay] == best
    assert probe.num_train + probe.num_val == 60


def test_split_is_per_class_seeded_and_disjoint():
    labels = np.array([0] * 10 + [1] * 5 + [2])
    train, val = split_train_val(labels, 0.2, seed=3)
    assert sorted(np.concatenate([train, val]).tolist()) == list(range(16))
    assert np.bincount(labels[val], minlength=3).tolist() == [2, 1, 0]  # a single-example class stays in train
    again_train, again_val = split_train_val(labels, 0.2, seed=3)
    assert np.array_equal(train, again_train) and np.array_equal(val, again_val)


def test_bad_labels_are_rejected():
    with pytest.raises(ValueError, match=r"0\.\.2"):
        train_linear_probe(torch.zeros(4, 3), [0, 1, 2, 3], num_classes=3)
    with pytest.raises(ValueError, match="4 feature rows but 3 labels"):
        train_linear_probe(torch.zeros(4, 3), [0, 1, 2], num_classes=3)
