"""Image-text retrieval Recall@K from a similarity matrix (SAR-KnowLIP paper 4.4, Table 6 "Image-Text Retrieval").

Key names follow BLIP's ``itm_eval`` (the paper's fine-tuning follows BLIP): ``txt_r*`` = image -> text (for each
image, rank all texts; a hit when any of its captions is in the top K), ``img_r*`` = text -> image. The paper's prose
assigns the two names the other way round; the overall metric ``r_mean`` (Table 6 "R", the mean of the six
recalls) is the same either way. All values are percentages.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

RECALL_KS = (1, 5, 10)


def _ranks(scores: np.ndarray, relevant: list[np.ndarray]) -> np.ndarray:
    """0-based rank of the best-ranked relevant candidate of each query (row).

    Ties are counted against the query (our choice): a relevant candidate ranks behind every candidate with a
    higher score and every other candidate with the same score, so a constant scorer gets no credit.
    """
    ranks = np.empty(len(scores), dtype=np.int64)
    for query, (row, targets) in enumerate(zip(scores, relevant)):
        target_scores = row[targets]
        higher = (row[None, :] > target_scores[:, None]).sum(axis=1)
        tied_others = (row[None, :] == target_scores[:, None]).sum(axis=1) - 1
        ranks[query] = (higher + tied_others).min()
    return ranks


def retrieval_recalls(similarity, text_to_image: Sequence[int]) -> dict[str, float]:
    """Recall@1/5/10 in both directions and their mean.

    Args:
        similarity: (n_images, n_texts) image-text scores (numpy array, torch tensor or nested lists), higher is
            more similar; e.g. ITC cosine similarities, or ITM scores after re-ranking.
        text_to_image: for each text (column), the index of its image (row); an image may have several texts.

    Returns:
        ``{"txt_r1", "txt_r5", "txt_r10", "img_r1", "img_r5", "img_r10", "r_mean"}`` in percent.
    """
    scores = np.asarray(similarity.detach().cpu() if hasattr(similarity, "detach") else similarity, dtype=np.float64)
    if scores.ndim != 2:
        raise ValueError(f"similarity must be a 2-D (n_images, n_texts) matrix, got shape {scores.shape}")
    n_images, n_texts = scores.shape
    text_to_image = np.asarray(text_to_image, dtype=np.int64)
    if text_to_image.shape != (n_texts,):
        raise ValueError(f"text_to_image has {text_to_image.size} entries for {n_texts} texts (similarity columns)")
    if n_texts and (text_to_image.min() < 0 or text_to_image.max() >= n_images):
        raise ValueError(f"text_to_image holds image indices outside 0..{n_images - 1}")
    if not np.isfinite(scores).all():
        raise ValueError("similarity has non-finite values")
    captions = [np.flatnonzero(text_to_image == image) for image in range(n_images)]
    if uncaptioned := [i for i, c in enumerate(captions) if c.size == 0]:
        raise ValueError(f"images {uncaptioned[:10]} have no text in text_to_image ({len(uncaptioned)} in all)")
    image_to_text_ranks = _ranks(scores, captions)
    text_to_image_ranks = _ranks(scores.T, [np.array([i]) for i in text_to_image])
    result = {f"txt_r{k}": float(100.0 * np.mean(image_to_text_ranks < k)) for k in RECALL_KS}
    result |= {f"img_r{k}": float(100.0 * np.mean(text_to_image_ranks < k)) for k in RECALL_KS}
    result["r_mean"] = float(np.mean(list(result.values())))
    return result
