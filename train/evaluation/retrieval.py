"""Image-text retrieval Recall@K for both model families (SARCLIP eq. 5 / Table III, SAR-KnowLIP Table 6).

One function over a score matrix: SARCLIP calls it with feature similarities (`image_features @ text_features.T`),
SAR-KnowLIP with its ITM re-ranked scores. Keys: `i2t_R@K` (image -> text: a hit when any text of the image is in
its top K), `t2i_R@K` (text -> image: a hit when an image carrying the text is in its top K), and `mean_recall`, the
mean of the six recalls (Table III "Mean Recall", Table 6 "R"). Values are percentages.

Repeated texts: identical strings are one text (`unique_captions`) whose correct images are all images carrying it.
Template captions (SARCLIP-1M recipe) repeat across a class (MSTAR test: 12,125 captions, 100 distinct strings) and
no model can tell such copies apart, so the strict per-copy rule would cap even a perfect model near 1 % (our choice;
for distinct captions both rules are eq. 5).

Tie rule (one for both families): a query's rank is the number of *wrong* candidates scoring at least as high as its
best correct candidate. Ties count against the query, so a constant scorer gets no credit.

Scale: `retrieval_recalls_from_features` gives the same results from the two feature matrices without ever holding
the score matrix (100k images x 500k texts would be 200 GB): blocks of scores, a running best correct score and the
`max(ks)` best wrong scores per query, so memory is one block plus `max(ks)` scores per query whatever N is.
"""

from __future__ import annotations

from collections.abc import Sequence
from numbers import Integral

import numpy as np
import torch

RECALL_KS = (1, 5, 10)


def _as_tensor(scores) -> torch.Tensor:
    if isinstance(scores, torch.Tensor):
        return scores.detach().cpu().float()
    return torch.as_tensor(np.asarray(scores, dtype=np.float32))


def _owners(text_to_image: Sequence, num_images: int) -> list[list[int]]:
    owners = [[o] if type(o) is int else [int(o)] if isinstance(o, Integral) or getattr(o, "ndim", None) == 0
              else [int(i) for i in o] for o in text_to_image]
    if any(not images or min(images) < 0 or max(images) >= num_images for images in owners):
        raise ValueError(f"text_to_image holds image indices outside 0..{num_images - 1} (or a text with none)")
    return owners


def first_hit_ranks(scores: torch.Tensor, relevant: Sequence[Sequence[int]], chunk_size: int = 1024) -> torch.Tensor:
    """Per query (row of `scores`), the number of irrelevant candidates scoring >= its best relevant candidate.

    Computed in chunks of rows, so memory is `chunk_size` x candidates whatever the number of queries.
    """
    ranks = []
    for start in range(0, scores.shape[0], chunk_size):
        block = scores[start : start + chunk_size]
        mask = torch.zeros_like(block, dtype=torch.bool)
        for row, targets in enumerate(relevant[start : start + chunk_size]):
            mask[row, list(targets)] = True
        best = block.masked_fill(~mask, float("-inf")).max(dim=1, keepdim=True).values
        ranks.append(((block >= best) & ~mask).sum(dim=1))
    return torch.cat(ranks)


def retrieval_recalls(
    scores,
    text_to_image: Sequence[int | Sequence[int]],
    ks: Sequence[int] = RECALL_KS,
    text_to_image_scores=None,
) -> dict[str, float]:
    """Recall@K both ways and their mean, from an (n_images, n_texts) score matrix (higher = more similar).

    Args:
        scores: image -> text scores (torch tensor, numpy array or nested lists).
        text_to_image: for each text (column) its image index, or the indices of all images carrying it.
        ks: the K values.
        text_to_image_scores: (n_texts, n_images) scores for the text -> image direction when they differ from
            `scores.T` (SAR-KnowLIP re-ranks each direction's candidates with ITM separately).

    Images without any text are left out of the image -> text queries and counted in `images_without_captions`.
    Returns `i2t_R@K`, `t2i_R@K`, `mean_recall`, `num_images`, `num_texts`, `images_without_captions`.
    """
    i2t = _as_tensor(scores)
    if i2t.ndim != 2:
        raise ValueError(f"scores must be a 2-D (n_images, n_texts) matrix, got shape {tuple(i2t.shape)}")
    num_images, num_texts = i2t.shape
    t2i = i2t.T if text_to_image_scores is None else _as_tensor(text_to_image_scores)
    if tuple(t2i.shape) != (num_texts, num_images):
        raise ValueError(f"text_to_image_scores must have shape {(num_texts, num_images)}, got {tuple(t2i.shape)}")
    images_of, texts_of, queried = _relevance(text_to_image, num_images, num_texts)
    if not (torch.isfinite(i2t).all() and torch.isfinite(t2i).all()):
        raise ValueError("scores have non-finite values")
    i2t_ranks = first_hit_ranks(i2t[queried], [texts_of[image] for image in queried])
    t2i_ranks = first_hit_ranks(t2i, images_of)
    return _recalls(i2t_ranks, t2i_ranks, ks, num_images, num_texts, len(queried))


def retrieval_recalls_from_features(
    image_features,
    text_features,
    text_to_image: Sequence[int | Sequence[int]],
    ks: Sequence[int] = RECALL_KS,
    block_size: tuple[int, int] = (2048, 8192),
) -> dict[str, float]:
    """`retrieval_recalls(image_features @ text_features.T, text_to_image, ks)` in bounded memory.

    The features (torch tensors or numpy arrays, e.g. `np.load(..., mmap_mode="r")`; any float dtype, scored in
    float32) are scored one (images x texts) block of `block_size` at a time; every block serves both directions.
    Per query only its best correct score and its `max(ks)` best wrong scores at or above it are kept (a running
    top-k), so each block costs one comparison pass plus a top-k over the few queries it changes. Same keys, same
    tie rule and the same values as the matrix path (block products equal the full product's entries).
    """
    num_images, num_texts = len(image_features), len(text_features)
    images_of, texts_of, queried = _relevance(text_to_image, num_images, num_texts)
    k = max(ks)
    rows = _RunningTopK(num_images, k)
    cols = _RunningTopK(num_texts, k)
    pairs = torch.tensor([(image, text) for text, images in enumerate(images_of) for image in images]).reshape(-1, 2)
    pairs = pairs[torch.argsort(pairs[:, 0], stable=True)]  # sorted by image: a block's pairs are a slice
    pair_images = pairs[:, 0].contiguous()
    image_block, text_block = block_size
    for i0 in range(0, num_images, image_block):
        images = _block(image_features, i0, image_block)
        lo, hi = torch.searchsorted(pair_images, torch.tensor([i0, i0 + len(images)])).tolist()
        image_pairs = pairs[lo:hi]
        for t0 in range(0, num_texts, text_block):
            texts = _block(text_features, t0, text_block)
            scores = images @ texts.T
            inside = image_pairs[(image_pairs[:, 1] >= t0) & (image_pairs[:, 1] < t0 + len(texts))]
            pi, pt = inside[:, 0] - i0, inside[:, 1] - t0
            correct = scores[pi, pt]
            rows.update_best(pi + i0, correct)
            cols.update_best(pt + t0, correct)
            scores[pi, pt] = float("-inf")  # only wrong candidates are left
            rows.update_wrong(scores, i0)
            cols.update_wrong(scores.T, t0)
    return _recalls(rows.ranks()[queried], cols.ranks(), ks, num_images, num_texts, len(queried))


class _RunningTopK:
    """Per query: its best correct score and its `k` best wrong scores that are at least that high (-inf: none).

    A wrong score below the running best can never count (the best only grows), so it is never kept.
    `ranks()` = min(rank, k): enough for Recall@K with K <= k.
    """

    def __init__(self, num_queries: int, k: int):
        self.best = torch.full((num_queries,), float("-inf"))
        self.wrong = torch.full((num_queries, k), float("-inf"))  # sorted, largest first

    def update_best(self, queries: torch.Tensor, scores: torch.Tensor) -> None:
        self.best.scatter_reduce_(0, queries, scores, reduce="amax")

    def update_wrong(self, scores: torch.Tensor, offset: int) -> None:
        """`scores`: (queries in this block, candidates), correct candidates already set to -inf. Only queries whose
        block maximum reaches their threshold are touched (few, once the first blocks are seen)."""
        span = slice(offset, offset + scores.shape[0])
        threshold = torch.maximum(self.best[span], self.wrong[span, -1])
        changed = (scores.amax(dim=1) >= threshold).nonzero().squeeze(1)
        if len(changed):
            if 2 * len(changed) > len(scores) and not scores.is_contiguous():
                scores = scores.contiguous()  # one transposing copy beats gathering most columns one by one
            k = self.wrong.shape[1]
            top = scores.index_select(0, changed).topk(min(k, scores.shape[1]), dim=1).values
            rows = offset + changed
            self.wrong[rows] = torch.cat([self.wrong[rows], top], dim=1).topk(k, dim=1).values

    def ranks(self) -> torch.Tensor:
        return (self.wrong >= self.best[:, None]).sum(dim=1)


def _block(features, start: int, size: int) -> torch.Tensor:
    block = features[start : start + size]
    if isinstance(block, torch.Tensor):
        block = block.detach().cpu().float()
    else:
        block = torch.from_numpy(np.array(block, dtype=np.float32))  # a copy: memory-mapped files stay read-only
    if not torch.isfinite(block).all():
        raise ValueError(f"features {start}..{start + len(block) - 1} have non-finite values")
    return block


def _relevance(text_to_image: Sequence, num_images: int, num_texts: int):
    """(images of each text, texts of each image, images with at least one text), with the input checks."""
    if num_images == 0 or num_texts == 0:
        raise ValueError(f"retrieval needs images and texts, got {num_images} images and {num_texts} texts")
    if len(text_to_image) != num_texts:
        raise ValueError(f"text_to_image has {len(text_to_image)} entries for {num_texts} texts")
    images_of = _owners(text_to_image, num_images)
    texts_of = [[] for _ in range(num_images)]
    for text, images in enumerate(images_of):
        for image in images:
            texts_of[image].append(text)
    return images_of, texts_of, [image for image in range(num_images) if texts_of[image]]


def _recalls(i2t_ranks, t2i_ranks, ks, num_images: int, num_texts: int, num_queried: int) -> dict[str, float]:
    results = {f"i2t_R@{k}": 100.0 * (i2t_ranks < k).float().mean().item() for k in ks}
    results |= {f"t2i_R@{k}": 100.0 * (t2i_ranks < k).float().mean().item() for k in ks}
    results["mean_recall"] = sum(results.values()) / len(results)
    results.update(num_images=float(num_images), num_texts=float(num_texts),
                   images_without_captions=float(num_images - num_queried))
    return results


def unique_captions(captions: Sequence[Sequence[str]]) -> tuple[list[str], list[list[int]]]:
    """Per-image caption lists -> (distinct texts in first-seen order, the images carrying each text)."""
    images_of: dict[str, list[int]] = {}
    for image, image_captions in enumerate(captions):
        if isinstance(image_captions, str):
            raise TypeError(f"captions of image {image} must be a list of strings, got a string")
        for text in image_captions:
            owners = images_of.setdefault(text, [])
            if not owners or owners[-1] != image:
                owners.append(image)
    return list(images_of), list(images_of.values())



def class_search_precision(scores, labels: Sequence[int], ks: Sequence[int] = (10,)) -> dict[str, float]:
    """Text -> image search with one query per class (archive search with class prompts): `mAP`, the mean over the
    classes present of the average precision of ranking every image by `scores[:, class]` (relevant: the images of
    that class; sklearn's `average_precision_score`, so tied scores count as one threshold and a constant scorer
    gets the class's share), and `P@K`, the mean fraction of the class's images among its top K. Percent.
    """
    from sklearn.metrics import average_precision_score

    scores = _as_tensor(scores).float().numpy()
    labels = np.asarray(labels)
    present = [c for c in range(scores.shape[1]) if (labels == c).any()]
    if not present:
        raise ValueError("class_search_precision: no image has a label of the scored classes")
    results = {"mAP": 100 * float(np.mean([average_precision_score(labels == c, scores[:, c]) for c in present]))}
    for k in ks:
        top = np.argsort(-scores[:, present], axis=0, kind="stable")[: min(k, len(labels))]
        results[f"P@{k}"] = 100 * float(np.mean([(labels[top[:, i]] == c).mean() for i, c in enumerate(present)]))
    return results

def recall_table_row(results: dict[str, float], ks: Sequence[int] = RECALL_KS) -> str:
    """One Markdown table in the column order of SARCLIP's Table III: i2t R@K..., t2i R@K..., mean recall."""
    header = [f"i2t R@{k}" for k in ks] + [f"t2i R@{k}" for k in ks] + ["Mean Recall"]
    values = [results[f"i2t_R@{k}"] for k in ks] + [results[f"t2i_R@{k}"] for k in ks] + [results["mean_recall"]]
    rows = [" | ".join(header), "|".join(["---"] * len(header)), " | ".join(f"{v:.2f}" for v in values)]
    return "\n".join(f"| {row} |" for row in rows)


__all__ = [
    "RECALL_KS", "class_search_precision", "first_hit_ranks", "recall_table_row", "retrieval_recalls", "retrieval_recalls_from_features",
    "unique_captions",
]
