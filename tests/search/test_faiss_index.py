"""The FAISS side of an archive index: the size rule, IVF training through `datasets`, and nprobe tuning measured
against exact search."""

import numpy as np
import pytest

from train.search.build import write_items
from train.search.faiss_index import (
    EmbeddingColumn, build_faiss_index, exact_top_k, index_factory_for, recall_at_k, set_nprobe, tune_nprobe,
)


def clustered(rows: int, dim: int = 32, clusters: int = 50, seed: int = 0) -> np.ndarray:
    """Unit vectors around `clusters` centres: like image embeddings, not uniform on the sphere."""
    rng = np.random.default_rng(seed)
    centres = rng.standard_normal((clusters, dim))
    vectors = centres[rng.integers(0, clusters, rows)] + 0.4 * rng.standard_normal((rows, dim))
    return (vectors / np.linalg.norm(vectors, axis=1, keepdims=True)).astype(np.float32)


def _rows(n):
    return [dict(id=str(i), split=None, row=None, path=None, label=None, caption=None, scene=None, window=None,
                 footprint=None) for i in range(n)]


def test_the_index_kind_follows_the_archive_size():
    assert index_factory_for(1_000, 512) == "Flat"
    assert index_factory_for(50_000, 512) == "Flat"
    assert index_factory_for(100_000, 512) == "IVF1024,SQ8"
    assert index_factory_for(1_000_000, 512) == "IVF4096,SQ8"
    assert index_factory_for(20_000_000, 512) == "IVF16384,PQ64"
    assert index_factory_for(60_000, 512).startswith("IVF1024")  # >= 39 training points per list


def test_exact_top_k_matches_a_full_sort():
    vectors = clustered(3_000)
    queries = vectors[:20]
    expected = np.argsort(-(queries @ vectors.T), axis=1, kind="stable")[:, :10]
    assert (exact_top_k(vectors, queries, 10, block=700) == expected).all()


def test_an_ivf_index_is_tuned_to_the_target_recall_against_exact_search(tmp_path):
    vectors = clustered(20_000)
    rows = _rows(len(vectors))
    items = write_items(tmp_path / "items",
                        ((rows[i : i + 7_000], vectors[i : i + 7_000]) for i in range(0, 20_000, 7_000)))
    column = EmbeddingColumn(items)
    np.testing.assert_array_equal(column[:], vectors)  # written chunk by chunk, read back whole or by rows
    np.testing.assert_array_equal(column[[19_999, 3]], vectors[[3, 19_999]])
    assert items["id"][:3] == ["0", "1", "2"] and items["id"][-1] == "19999"
    index = build_faiss_index(items, "IVF128,SQ8")
    assert index.ntotal == len(vectors) and index.is_trained
    nprobe, recall = tune_nprobe(index, column, k=10, target_recall=0.95)
    assert (nprobe, recall) == tune_nprobe(index, vectors, k=10, target_recall=0.95)  # column or array: the same
    assert recall >= 0.95 and 1 <= nprobe < 128
    queries = vectors[np.random.default_rng(5).choice(len(vectors), 300, replace=False)]
    exact = exact_top_k(vectors, queries, 10)
    set_nprobe(index, nprobe)
    assert recall_at_k(index.search(queries, 10)[1], exact) >= 0.93  # fresh queries: the tuned depth holds
    set_nprobe(index, 1)
    assert recall_at_k(index.search(queries, 10)[1], exact) < recall  # fewer lists visited: recall falls


def test_a_flat_index_is_exact(tmp_path):
    vectors = clustered(2_000)
    index = build_faiss_index(write_items(tmp_path / "items", [(_rows(len(vectors)), vectors)]), "Flat")
    assert tune_nprobe(index, vectors) == (None, pytest.approx(1.0))
