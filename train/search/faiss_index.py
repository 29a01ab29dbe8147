"""The FAISS index of an archive: chosen by size, trained on a random sample, filled through `datasets`
(`Dataset.add_faiss_index(custom_index=...)`), and its search depth tuned to a target recall against exact search.

Embeddings are L2-normalised, so inner product = cosine (METRIC_INNER_PRODUCT). The size rule (`index_factory_for`),
in the spirit of autofaiss (memory per vector for a 512-d embedding in brackets):
- up to `EXACT_MAX_ROWS` rows: `Flat`, exact search (2 KiB);
- up to `SQ8_MAX_ROWS`: `IVF<nlist>,SQ8`, an inverted file over 8-bit scalar-quantised vectors (512 B);
- more: `IVF<nlist>,PQ<d/8>`, product quantisation (64 B; recall is lower: check the build's measured recall).
`nlist` is about 4 sqrt(rows), a power of two, with at least 39 training points per list (faiss's minimum).
Any faiss `index_factory` string can be given instead (e.g. `HNSW32,Flat`).

`nprobe` (lists visited per query) is the smallest power of two whose recall@k on `TUNE_QUERIES` of the archive's own
embeddings reaches `target_recall` against exact search; the build records it and the recall it measured. Text
queries fall elsewhere in the embedding space than image embeddings (the modality gap), so their recall can differ.
"""

from __future__ import annotations

import math

import datasets
import faiss
import numpy as np

EXACT_MAX_ROWS = 50_000
SQ8_MAX_ROWS = 5_000_000
TRAIN_SAMPLE_PER_LIST = 64  # training points per inverted list (faiss warns below 39)
TUNE_QUERIES = 500
EMBEDDING_COLUMN = "embedding"


def index_factory_for(rows: int, dim: int) -> str:
    """The faiss `index_factory` string for `rows` embeddings of `dim` dimensions (module docstring)."""
    if rows <= EXACT_MAX_ROWS:
        return "Flat"
    nlist = 2 ** round(math.log2(4 * math.sqrt(rows)))
    nlist = min(nlist, 2 ** int(math.log2(rows // 39)))
    if rows <= SQ8_MAX_ROWS:
        return f"IVF{nlist},SQ8"
    return f"IVF{nlist},PQ{max(1, dim // 8)}"


def build_faiss_index(items: datasets.Dataset, factory: str, seed: int = 0) -> faiss.Index:
    """Train an index of kind `factory` on a random sample of `items`' embeddings and add them all (via
    `datasets`, which keeps the index attached to `items` as `EMBEDDING_COLUMN`)."""
    dim = len(items[0][EMBEDDING_COLUMN])
    try:
        index = faiss.index_factory(dim, factory, faiss.METRIC_INNER_PRODUCT)
    except RuntimeError as err:
        raise ValueError(f"index factory {factory!r}: not a faiss index_factory string "
                         f"({_faiss_message(err)})") from None
    if not index.is_trained:
        sample = _train_sample(items, index, seed)
        index.train(sample)
    items.add_faiss_index(EMBEDDING_COLUMN, custom_index=index, batch_size=10_000)
    return items.get_index(EMBEDDING_COLUMN).faiss_index


def _train_sample(items: datasets.Dataset, index: faiss.Index, seed: int) -> np.ndarray:
    ivf = _ivf(index)
    size = len(items) if ivf is None else min(len(items), TRAIN_SAMPLE_PER_LIST * ivf.nlist)
    return EmbeddingColumn(items)[np.random.default_rng(seed).choice(len(items), size=size, replace=False)]


class EmbeddingColumn:
    """The embeddings of a (memory-mapped) `datasets.Dataset`, read from the Arrow column without Python lists:
    `len()`, and `[a:b]` or `[rows]` -> (N, D) float32."""

    def __init__(self, items: datasets.Dataset):
        self.column = items.with_format("numpy", columns=[EMBEDDING_COLUMN])

    def __len__(self) -> int:
        return len(self.column)

    def __getitem__(self, rows) -> np.ndarray:
        if not isinstance(rows, slice):
            rows = np.sort(np.asarray(rows)).tolist()
        return np.ascontiguousarray(self.column[rows][EMBEDDING_COLUMN], dtype=np.float32)


def _ivf(index: faiss.Index):
    try:
        return faiss.extract_index_ivf(index)
    except RuntimeError:
        return None


def set_nprobe(index: faiss.Index, nprobe: int | None) -> None:
    """Lists visited per query (IVF indexes; ignored by others)."""
    ivf = _ivf(index)
    if ivf is not None and nprobe:
        ivf.nprobe = min(int(nprobe), ivf.nlist)


def tune_nprobe(index: faiss.Index, vectors, k: int = 10, target_recall: float = 0.95,
                seed: int = 0) -> tuple[int | None, float]:
    """`(nprobe, recall@k)`: the smallest power-of-two nprobe whose recall@k (overlap of the approximate and exact
    top-k, averaged over up to TUNE_QUERIES of `vectors` as queries) reaches `target_recall`; `(None, recall)` for
    indexes without inverted lists (exact: recall 1)."""
    queries = vectors[np.random.default_rng(seed).choice(len(vectors), min(TUNE_QUERIES, len(vectors)), replace=False)]
    k = min(k, len(vectors))
    exact = exact_top_k(vectors, queries, k)
    ivf = _ivf(index)
    if ivf is None:
        return None, recall_at_k(index.search(queries, k)[1], exact)
    nprobe, recall = 1, 0.0
    while True:
        ivf.nprobe = nprobe
        recall = recall_at_k(index.search(queries, k)[1], exact)
        if recall >= target_recall or nprobe >= ivf.nlist:
            return nprobe, recall
        nprobe *= 2


def exact_top_k(vectors, queries: np.ndarray, k: int, block: int = 16_384) -> np.ndarray:
    """(Q, k) row ids of the exact top-k by inner product: faiss's brute-force kNN block by block, merged in its
    result heap. `vectors`: an array or an `EmbeddingColumn` (read one block at a time)."""
    heap = faiss.ResultHeap(len(queries), k, keep_max=True)
    for start in range(0, len(vectors), block):
        scores, ids = faiss.knn(queries, vectors[start : start + block], k, metric=faiss.METRIC_INNER_PRODUCT)
        heap.add_result(scores, np.where(ids < 0, -1, ids + start))
    heap.finalize()
    return heap.I


def recall_at_k(found: np.ndarray, exact: np.ndarray) -> float:
    """Mean fraction of each query's exact top-k found in its approximate top-k."""
    return float(np.mean([len(set(f) & set(e)) / len(e) for f, e in zip(found.tolist(), exact.tolist())]))


def _faiss_message(err: RuntimeError) -> str:
    text = str(err).strip().splitlines()
    return next((line for line in reversed(text) if line.strip()), "faiss error").strip()
