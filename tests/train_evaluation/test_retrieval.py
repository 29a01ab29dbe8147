"""Retrieval R@K (eq. 5) on hand-made similarity matrices with known answers.

A similarity matrix S (images x texts) is fed as image features S and text features I (identity): S @ I.T == S.
"""

import pytest
import torch

from train.evaluation.retrieval import rank_candidates, retrieval_recalls, table_iii_row, unique_captions


def _recalls(similarity, text_to_image, ks=(1, 2, 3)):
    similarity = torch.tensor(similarity, dtype=torch.float32)
    return retrieval_recalls(similarity, torch.eye(similarity.shape[1]), text_to_image, ks)


def test_one_caption_per_image_known_ranks():
    # image i's own caption is text i. i2t: rank of the own caption per row = 0, 1, 2.
    # t2i: per column the own image ranks first (columns (0.9, 0.8, 0.5), (0.1, 0.7, 0.6), (0.2, 0.0, 0.3)).
    similarity = [
        [0.9, 0.1, 0.2],
        [0.8, 0.7, 0.0],
        [0.5, 0.6, 0.3],
    ]
    results = _recalls(similarity, [0, 1, 2])
    assert results["i2t_R@1"] == pytest.approx(100 / 3)
    assert results["i2t_R@2"] == pytest.approx(200 / 3)
    assert results["i2t_R@3"] == 100.0
    assert results["t2i_R@1"] == 100.0
    assert results["mean_recall"] == pytest.approx((100 / 3 + 200 / 3 + 100 + 300) / 6)


def test_any_caption_of_an_image_counts_for_image_to_text():
    # image 0 owns texts 0 and 1, image 1 owns text 2. Image 0 ranks text 2 first, then text 1: hit at R@2 only.
    similarity = [
        [0.1, 0.5, 0.9],
        [0.3, 0.2, 0.8],
    ]
    results = _recalls(similarity, [0, 0, 1], ks=(1, 2))
    assert results["i2t_R@1"] == 50.0  # image 1 finds text 2 first, image 0 misses
    assert results["i2t_R@2"] == 100.0
    # text -> image: text 0 ranks (1, 0): miss at 1; text 1 ranks (0, 1): hit; text 2 ranks (0, 1): miss at 1
    assert results["t2i_R@1"] == pytest.approx(100 / 3)
    assert results["t2i_R@2"] == 100.0
    assert results["num_images"] == 2.0 and results["num_texts"] == 3.0


def test_images_without_captions_are_counted_not_queried():
    similarity = [[0.9, 0.1], [0.8, 0.2], [0.0, 1.0]]  # image 1 has no caption
    results = _recalls(similarity, [0, 2], ks=(1,))
    assert results["images_without_captions"] == 1.0
    assert results["i2t_R@1"] == 100.0  # images 0 and 2 only
    assert results["t2i_R@1"] == 100.0


def test_ties_are_broken_towards_the_lower_index():
    scores = torch.tensor([[1.0, 1.0, 0.5, 1.0]])
    assert rank_candidates(scores, torch.eye(4), top_k=3).tolist() == [[0, 1, 3]]


def test_chunked_ranking_equals_unchunked():
    torch.manual_seed(0)
    queries, candidates = torch.randn(50, 8), torch.randn(30, 8)
    assert torch.equal(rank_candidates(queries, candidates, 10, chunk_size=7), rank_candidates(queries, candidates, 10))


def test_bad_text_to_image_is_rejected():
    with pytest.raises(ValueError, match="outside 0..1"):
        _recalls([[0.1, 0.2], [0.3, 0.4]], [0, 2])
    with pytest.raises(ValueError, match="entries for 2 texts"):
        _recalls([[0.1, 0.2], [0.3, 0.4]], [0])


def test_identical_captions_are_one_text_with_all_its_images():
    texts, owners = unique_captions([["a tank", "a ship"], [], ["a tank", "a tank"]])
    assert texts == ["a tank", "a ship"] and owners == [[0, 2], [0]]
    with pytest.raises(TypeError, match="image 0"):
        unique_captions(["a caption"])
    # image 2 ranks "a tank" first, image 0 ranks "a ship" first: both hits; "a tank" retrieves image 2 first: a hit
    similarity = [[0.5, 0.9], [0.1, 0.1], [0.8, 0.2]]
    result = _recalls(similarity, owners, ks=(1,))
    assert result["i2t_R@1"] == 100.0 and result["t2i_R@1"] == 100.0


def test_table_row():
    row = table_iii_row({"i2t_R@1": 4.69, "i2t_R@5": 15.87, "i2t_R@10": 24.04, "t2i_R@1": 4.9, "t2i_R@5": 16.62,
                         "t2i_R@10": 25.42, "mean_recall": 15.2567})
    assert row.splitlines()[0].startswith("| i2t R@1 | i2t R@5 | i2t R@10 | t2i R@1")
    assert row.splitlines()[-1] == "| 4.69 | 15.87 | 24.04 | 4.90 | 16.62 | 25.42 | 15.26 |"
