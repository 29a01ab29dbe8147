"""Retrieval Recall@K from similarity matrices, against hand-computed ranks."""

import numpy as np
import pytest
import torch

from train.knowlip_eval import retrieval_recalls


def test_small_matrix_with_two_captions_for_one_image():
    # 3 images, 4 texts; texts 0 and 1 describe image 0.
    similarity = [
        [0.9, 0.1, 0.5, 0.2],  # image 0: its text 0 is first            -> rank 0
        [0.8, 0.3, 0.7, 0.1],  # image 1: its text 2 is behind text 0     -> rank 1
        [0.6, 0.9, 0.4, 0.3],  # image 2: its text 3 is last              -> rank 3
    ]
    # Text -> image (columns): text 0 -> image 0 first (rank 0); text 1 -> image 0 last (rank 2);
    # text 2 -> image 1 first (rank 0); text 3 -> image 2 first (rank 0).
    r = retrieval_recalls(similarity, [0, 0, 1, 2])
    assert r["txt_r1"] == pytest.approx(100 / 3) and r["txt_r5"] == r["txt_r10"] == 100.0
    assert r["img_r1"] == 75.0 and r["img_r5"] == r["img_r10"] == 100.0
    assert r["r_mean"] == pytest.approx((100 / 3 + 100 + 100 + 75 + 100 + 100) / 6)
    assert list(r) == ["txt_r1", "txt_r5", "txt_r10", "img_r1", "img_r5", "img_r10", "r_mean"]


def test_ranks_zero_to_eleven_in_both_directions():
    # Row i: i texts (those before i) score above its own text -> rank i. Column j: the 11 - j images after j
    # score above image j -> rank 11 - j. So both directions see ranks 0..11 once each.
    n = 12
    similarity = np.tril(np.ones((n, n)), k=-1) + 0.5 * np.eye(n)
    r = retrieval_recalls(torch.tensor(similarity, dtype=torch.float32), list(range(n)))
    for direction in ("txt", "img"):
        assert r[f"{direction}_r1"] == pytest.approx(100 / 12)
        assert r[f"{direction}_r5"] == pytest.approx(500 / 12)
        assert r[f"{direction}_r10"] == pytest.approx(1000 / 12)
    assert r["r_mean"] == pytest.approx(100 * (1 + 5 + 10) / 36)


def test_ties_count_against_the_query():
    assert set(retrieval_recalls(np.zeros((12, 12)), list(range(12))).values()) == {0.0}
    # Identity scores: every correct pair is strictly first.
    assert set(retrieval_recalls(np.eye(3), [0, 1, 2]).values()) == {100.0}


def test_bad_inputs_are_named():
    with pytest.raises(ValueError, match="2-D"):
        retrieval_recalls(np.zeros(3), [0, 1, 2])
    with pytest.raises(ValueError, match="text_to_image has 2 entries for 3 texts"):
        retrieval_recalls(np.zeros((3, 3)), [0, 1])
    with pytest.raises(ValueError, match="outside 0..2"):
        retrieval_recalls(np.zeros((3, 3)), [0, 1, 3])
    with pytest.raises(ValueError, match=r"images \[2\] have no text"):
        retrieval_recalls(np.zeros((3, 3)), [0, 1, 1])
    with pytest.raises(ValueError, match="non-finite"):
        retrieval_recalls(np.full((2, 2), np.nan), [0, 1])
