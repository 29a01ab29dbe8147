"""Image-text retrieval: image->text and text->image R@1/5/10 and mean recall (SARCLIP eq. 5, Table III).

An image may have several captions: for image->text any of its captions is a correct answer; for text->image the
correct answer is the caption's own image. Identical caption strings are one text (`unique_captions`) whose correct
answers are all images carrying it: captions built from templates (SARCLIP-1M recipe) repeat across images of a
class (MSTAR test: 12,125 captions, 100 distinct strings), and a model cannot tell such copies apart, so the strict
per-copy rule would cap even a perfect model near 1% (our choice; for unique captions both rules are eq. 5). Mean recall is the mean of the six R@K values (it reproduces Table III's
"Mean Recall" column). Values are in percent, as in the paper.
Ties in similarity are broken towards the lower candidate index (stable sort), so results are deterministic.
"""

from __future__ import annotations

from collections.abc import Sequence
from numbers import Integral

import torch

from .metrics import load_metric

RECALL_KS = (1, 5, 10)


def rank_candidates(
    query_features: torch.Tensor, candidate_features: torch.Tensor, top_k: int, chunk_size: int = 1024
) -> torch.Tensor:
    """(Q, min(top_k, C)) candidate indices per query, by decreasing dot product, computed in chunks of queries."""
    top_k = min(top_k, candidate_features.shape[0])
    ranked = []
    for start in range(0, query_features.shape[0], chunk_size):
        scores = query_features[start : start + chunk_size] @ candidate_features.T
        ranked.append(torch.sort(scores, dim=1, descending=True, stable=True).indices[:, :top_k])
    return torch.cat(ranked)


def retrieval_recalls(
    image_features: torch.Tensor,
    text_features: torch.Tensor,
    text_to_image: Sequence[int | Sequence[int]],
    ks: Sequence[int] = RECALL_KS,
) -> dict[str, float]:
    """Recall@K both ways from normalised features; `text_to_image[t]` is the image index (or indices) of text `t`.

    Images without any text are left out of the image->text queries and counted in `images_without_captions`.
    Returns {"i2t_R@K", "t2i_R@K" for K in ks, "mean_recall", "num_images", "num_texts", "images_without_captions"}.
    """
    num_images, num_texts = image_features.shape[0], text_features.shape[0]
    images_of = [[int(owner)] if isinstance(owner, Integral) or getattr(owner, "ndim", None) == 0
                 else [int(image) for image in owner] for owner in text_to_image]
    if len(images_of) != num_texts:
        raise ValueError(f"text_to_image has {len(images_of)} entries for {num_texts} texts")
    if num_texts == 0 or num_images == 0:
        raise ValueError(f"retrieval needs images and texts, got {num_images} images and {num_texts} texts")
    if any(not owners or min(owners) < 0 or max(owners) >= num_images for owners in images_of):
        raise ValueError(f"text_to_image holds image indices outside 0..{num_images - 1} (or a text with none)")
    captions_of = [[] for _ in range(num_images)]
    for text, owners in enumerate(images_of):
        for image in owners:
            captions_of[image].append(text)
    queried = [image for image in range(num_images) if captions_of[image]]

    metric = load_metric("sar_retrieval")
    top_k = max(ks)
    i2t = metric.compute(
        predictions=rank_candidates(image_features[queried], text_features, top_k).tolist(),
        references=[captions_of[image] for image in queried],
        ks=ks,
    )
    t2i = metric.compute(
        predictions=rank_candidates(text_features, image_features, top_k).tolist(),
        references=images_of,
        ks=ks,
    )
    results = {f"i2t_{name}": value for name, value in i2t.items()}
    results.update({f"t2i_{name}": value for name, value in t2i.items()})
    results["mean_recall"] = (sum(i2t.values()) + sum(t2i.values())) / (len(i2t) + len(t2i))
    results.update(
        num_images=float(num_images),
        num_texts=float(num_texts),
        images_without_captions=float(num_images - len(queried)),
    )
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


def table_iii_row(results: dict[str, float], ks: Sequence[int] = RECALL_KS) -> str:
    """One Markdown row in the column order of the paper's Table III: i2t R@K..., t2i R@K..., mean recall."""
    header = [f"i2t R@{k}" for k in ks] + [f"t2i R@{k}" for k in ks] + ["Mean Recall"]
    values = [results[f"i2t_R@{k}"] for k in ks] + [results[f"t2i_R@{k}"] for k in ks] + [results["mean_recall"]]
    rows = [" | ".join(header), "|".join(["---"] * len(header)), " | ".join(f"{v:.2f}" for v in values)]
    return "\n".join(f"| {row} |" for row in rows)


__all__ = ["RECALL_KS", "rank_candidates", "retrieval_recalls", "table_iii_row", "unique_captions"]
