"""Retrieval Recall@K (SARCLIP eq. 5, SAR-KnowLIP Table 6): one function for both families, on hand-made score
matrices with known ranks."""

import numpy as np
import pytest
import torch

from train.evaluation.retrieval import (
    first_hit_ranks, recall_table_row, retrieval_recalls, retrieval_recalls_from_features, unique_captions,
)

SIX = ["i2t_R@1", "i2t_R@5", "i2t_R@10", "t2i_R@1", "t2i_R@5", "t2i_R@10"]


def test_one_caption_per_image_known_ranks():
    # image i's own caption is text i. i2t: rank of the own caption per row = 0, 1, 2.
    # t2i: per column the own image ranks first (columns (0.9, 0.8, 0.5), (0.1, 0.7, 0.6), (0.2, 0.0, 0.3)).
    similarity = [[0.9, 0.1, 0.2], [0.8, 0.7, 0.0], [0.5, 0.6, 0.3]]
    results = retrieval_recalls(similarity, [0, 1, 2], ks=(1, 2, 3))
    assert results["i2t_R@1"] == pytest.approx(100 / 3)
    assert results["i2t_R@2"] == pytest.approx(200 / 3)
    assert results["i2t_R@3"] == 100.0
    assert results["t2i_R@1"] == 100.0
    assert results["mean_recall"] == pytest.approx((100 / 3 + 200 / 3 + 100 + 300) / 6)


def test_two_captions_for_one_image_default_ks():
    # 3 images, 4 texts; texts 0 and 1 describe image 0.
    similarity = [
        [0.9, 0.1, 0.5, 0.2],  # image 0: its text 0 is first            -> rank 0
        [0.8, 0.3, 0.7, 0.1],  # image 1: its text 2 is behind text 0     -> rank 1
        [0.6, 0.9, 0.4, 0.3],  # image 2: its text 3 is last              -> rank 3
    ]
    # text -> image (columns): text 0 -> rank 0; text 1 -> image 0 last (rank 2); text 2 -> rank 0; text 3 -> rank 0
    r = retrieval_recalls(torch.tensor(similarity), [0, 0, 1, 2])
    assert r["i2t_R@1"] == pytest.approx(100 / 3) and r["i2t_R@5"] == r["i2t_R@10"] == 100.0
    assert r["t2i_R@1"] == 75.0 and r["t2i_R@5"] == r["t2i_R@10"] == 100.0
    assert r["mean_recall"] == pytest.approx((100 / 3 + 100 + 100 + 75 + 100 + 100) / 6)
    assert list(r)[:7] == SIX + ["mean_recall"]
    assert (r["num_images"], r["num_texts"], r["images_without_captions"]) == (3.0, 4.0, 0.0)


def test_ranks_zero_to_eleven_in_both_directions():
    # Row i: i texts (those before i) score above its own text -> rank i. Column j: the 11 - j images after j
    # score above image j -> rank 11 - j. So both directions see ranks 0..11 once each.
    n = 12
    r = retrieval_recalls(np.tril(np.ones((n, n)), k=-1) + 0.5 * np.eye(n), list(range(n)))
    for direction in ("i2t", "t2i"):
        assert r[f"{direction}_R@1"] == pytest.approx(100 / 12)
        assert r[f"{direction}_R@5"] == pytest.approx(500 / 12)
        assert r[f"{direction}_R@10"] == pytest.approx(1000 / 12)
    assert r["mean_recall"] == pytest.approx(100 * (1 + 5 + 10) / 36)


def test_ties_count_against_the_query_but_not_between_correct_candidates():
    assert {retrieval_recalls(np.zeros((12, 12)), list(range(12)))[k] for k in SIX} == {0.0}
    assert {retrieval_recalls(np.eye(3), [0, 1, 2])[k] for k in SIX} == {100.0}
    # query 0: its two correct candidates tie with each other and beat the rest: rank 0
    # query 1: its correct candidate ties with one wrong one: rank 1
    scores = torch.tensor([[0.9, 0.9, 0.1], [0.5, 0.2, 0.5]])
    assert first_hit_ranks(scores, [[0, 1], [2]]).tolist() == [0, 1]


def test_images_without_captions_are_counted_not_queried():
    results = retrieval_recalls([[0.9, 0.1], [0.8, 0.2], [0.0, 1.0]], [0, 2], ks=(1,))  # image 1 has no caption
    assert results["images_without_captions"] == 1.0
    assert results["i2t_R@1"] == 100.0  # images 0 and 2 only
    assert results["t2i_R@1"] == 100.0


def test_separate_text_to_image_scores():
    # SAR-KnowLIP re-ranks each direction separately: the t2i matrix need not be the transpose
    i2t = np.eye(2)
    t2i = np.array([[0.0, 1.0], [1.0, 0.0]])  # both texts retrieve the wrong image first
    r = retrieval_recalls(i2t, [0, 1], ks=(1,), text_to_image_scores=t2i)
    assert r["i2t_R@1"] == 100.0 and r["t2i_R@1"] == 0.0
    with pytest.raises(ValueError, match=r"shape \(2, 2\)"):
        retrieval_recalls(i2t, [0, 1], text_to_image_scores=np.zeros((3, 2)))


def test_chunked_ranks_equal_unchunked():
    torch.manual_seed(0)
    scores = torch.randn(50, 30)
    relevant = [[i % 30] for i in range(50)]
    assert torch.equal(first_hit_ranks(scores, relevant, chunk_size=7), first_hit_ranks(scores, relevant))


def test_bad_inputs_are_named():
    with pytest.raises(ValueError, match="2-D"):
        retrieval_recalls(np.zeros(3), [0, 1, 2])
    with pytest.raises(ValueError, match="text_to_image has 2 entries for 3 texts"):
        retrieval_recalls(np.zeros((3, 3)), [0, 1])
    with pytest.raises(ValueError, match="outside 0..2"):
        retrieval_recalls(np.zeros((3, 3)), [0, 1, 3])
    with pytest.raises(ValueError, match="non-finite"):
        retrieval_recalls(np.full((2, 2), np.nan), [0, 1])


def test_identical_captions_are_one_text_with_all_its_images():
    texts, owners = unique_captions([["a tank", "a ship"], [], ["a tank", "a tank"]])
    assert texts == ["a tank", "a ship"] and owners == [[0, 2], [0]]
    with pytest.raises(TypeError, match="image 0"):
        unique_captions(["a caption"])
    # image 2 ranks "a tank" first, image 0 ranks "a ship" first: both hits; "a tank" retrieves image 2 first: a hit
    result = retrieval_recalls([[0.5, 0.9], [0.1, 0.1], [0.8, 0.2]], owners, ks=(1,))
    assert result["i2t_R@1"] == 100.0 and result["t2i_R@1"] == 100.0


def test_table_row():
    row = recall_table_row({"i2t_R@1": 4.69, "i2t_R@5": 15.87, "i2t_R@10": 24.04, "t2i_R@1": 4.9, "t2i_R@5": 16.62,
                            "t2i_R@10": 25.42, "mean_recall": 15.2567})
    assert row.splitlines()[0].startswith("| i2t R@1 | i2t R@5 | i2t R@10 | t2i R@1")
    assert row.splitlines()[-1] == "| 4.69 | 15.87 | 24.04 | 4.90 | 16.62 | 25.42 | 15.26 |"


def _features_case(seed, num_images=37, num_texts=53, dim=8, integer=False):
    """Features with repeated texts (several images each), an image without text, and (integer=True) exact ties."""
    g = torch.Generator().manual_seed(seed)
    if integer:  # small integers: every score is exact, so many wrong and correct candidates tie
        images, texts = torch.randint(-1, 2, (num_images, dim), generator=g), torch.randint(-1, 2, (num_texts, dim), generator=g)
        images, texts = images.float(), texts.float()
    else:
        images, texts = torch.randn(num_images, dim, generator=g), torch.randn(num_texts, dim, generator=g)
    owners = [[t % (num_images - 1)] if t % 3 else [t % (num_images - 1), (t * 7) % (num_images - 1)]
              for t in range(num_texts)]  # the last image has no text
    return images, texts, owners


@pytest.mark.parametrize("integer", [False, True], ids=["random", "ties"])
@pytest.mark.parametrize("block_size", [(5, 7), (64, 3), (1000, 1000)])
def test_features_path_equals_the_matrix_path(integer, block_size):
    images, texts, owners = _features_case(0, integer=integer)
    expected = retrieval_recalls(images @ texts.T, owners, ks=(1, 2, 5, 10))
    got = retrieval_recalls_from_features(images, texts, owners, ks=(1, 2, 5, 10), block_size=block_size)
    assert got == expected and got["images_without_captions"] == 1.0
    if integer:  # ties are really there: wrong texts scoring exactly a text's best correct image
        scores = images @ texts.T
        assert any((scores[:, t] == scores[o, t].max()).sum() > (scores[o, t] == scores[o, t].max()).sum()
                   for t, o in enumerate(owners))


def test_features_path_reads_numpy_memmaps_and_half_precision(tmp_path):
    images, texts, owners = _features_case(1)
    np.save(tmp_path / "texts.npy", texts.half().numpy())
    mapped = np.load(tmp_path / "texts.npy", mmap_mode="r")
    expected = retrieval_recalls(images @ texts.half().float().T, owners)
    assert retrieval_recalls_from_features(images.numpy(), mapped, owners, block_size=(8, 16)) == expected


def test_features_path_checks_inputs():
    with pytest.raises(ValueError, match="text_to_image has 1 entries for 2 texts"):
        retrieval_recalls_from_features(torch.ones(2, 4), torch.ones(2, 4), [0])
    with pytest.raises(ValueError, match="features 0..1 have non-finite values"):
        retrieval_recalls_from_features(torch.full((2, 4), float("nan")), torch.ones(2, 4), [0, 1])


def test_class_search_precision_ranks_the_images_of_each_class():
    from train.evaluation.retrieval import class_search_precision

    labels = [0, 0, 1, 1, 1, 2]
    perfect = np.eye(3)[labels]
    assert class_search_precision(perfect, labels, ks=(1,)) == {"mAP": 100.0, "P@1": 100.0}
    constant = np.zeros((6, 3))  # every image tied: AP = the class's share of the images
    assert class_search_precision(constant, labels)["mAP"] == pytest.approx(100 * np.mean([2 / 6, 3 / 6, 1 / 6]))
    # class 0 ranks image 2 (wrong), 0, 1: AP = (1/2 + 2/3) / 2; classes 1 and 2 perfect
    scores = np.array([[0.8, 0, 0], [0.7, 0, 0], [0.9, 1, 0], [0, 1, 0], [0, 1, 0], [0, 0, 1]])
    result = class_search_precision(scores, labels, ks=(1, 3))
    assert result["mAP"] == pytest.approx(100 * ((0.5 + 2 / 3) / 2 + 1 + 1) / 3)
    assert result["P@1"] == pytest.approx(100 * 2 / 3) and result["P@3"] == pytest.approx(100 * (2 / 3 + 1 + 1 / 3) / 3)
    with pytest.raises(ValueError, match="no image"):
        class_search_precision(np.zeros((2, 2)), [5, 5])
