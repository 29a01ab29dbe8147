"""Batched, gradient-free image and text feature extraction: L2-normalised float32 embeddings on the CPU.

Works with any model that has SarclipModel's `get_image_features(pixel_values)` / `get_text_features(input_ids,
attention_mask)` returning an output whose `pooler_output` is the projected embedding (SarclipModel, SarclipEnsemble,
SarKnowlipModel). Inputs go to the model's device and, for pixels, to its floating dtype. Only `pooler_output` is
read, so the models are called with `pooled_only=True` (SARCLIP then skips the last block's other tokens; others
ignore it).
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Sequence
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F


@contextlib.contextmanager
def eval_mode(model: torch.nn.Module) -> Iterator[None]:
    """`model.eval()` inside the block; the previous train/eval mode is restored afterwards."""
    was_training = model.training
    model.eval()
    try:
        yield
    finally:
        model.train(was_training)


def _autocast(device: torch.device, autocast_dtype: torch.dtype | None):
    # No context at all without a dtype: an `autocast(enabled=False)` would switch off a caller's own autocast.
    return contextlib.nullcontext() if autocast_dtype is None else torch.autocast(device.type, dtype=autocast_dtype)


def _batches(items: Sequence, batch_size: int) -> Iterator[Sequence]:
    if batch_size < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size}")
    for start in range(0, len(items), batch_size):
        yield items[start : start + batch_size]


@torch.no_grad()
def encode_images(
    model: torch.nn.Module,
    processor,
    images: Sequence,
    batch_size: int = 64,
    autocast_dtype: torch.dtype | None = None,
) -> torch.Tensor:
    """Images (a list, or a `datasets` column such as ``dataset["image"]``) -> (N, D) normalised features."""
    parameter = next(model.parameters())
    features = []
    with eval_mode(model):
        for batch in _batches(images, batch_size):
            pixel_values = processor(images=list(batch))["pixel_values"].to(parameter.device, parameter.dtype)
            with _autocast(parameter.device, autocast_dtype):
                embeddings = model.get_image_features(pixel_values=pixel_values, pooled_only=True).pooler_output
            features.append(F.normalize(embeddings.float(), dim=-1).cpu())
    if not features:
        raise ValueError("encode_images: no images given")
    return torch.cat(features)


@torch.no_grad()
def encode_texts(
    model: torch.nn.Module,
    processor,
    texts: Sequence[str],
    batch_size: int = 64,
    autocast_dtype: torch.dtype | None = None,
) -> torch.Tensor:
    """Texts -> (N, D) normalised features.

    Each distinct text is encoded once (template captions such as SARCLIP-1M's repeat a lot: MSTAR-test's 12,125
    captions hold 100 distinct strings) and its row is repeated for the duplicates. Texts are batched in order of
    length and each batch is padded to its own longest text (the processor's default), which changes no embedding.
    """
    device = next(model.parameters()).device
    distinct = sorted(dict.fromkeys(texts), key=len)
    features = []
    with eval_mode(model):
        for batch in _batches(distinct, batch_size):
            tokens = processor(text=list(batch))
            with _autocast(device, autocast_dtype):
                embeddings = model.get_text_features(
                    input_ids=tokens["input_ids"].to(device), attention_mask=tokens["attention_mask"].to(device),
                    pooled_only=True,
                ).pooler_output
            features.append(F.normalize(embeddings.float(), dim=-1).cpu())
    if not features:
        raise ValueError("encode_texts: no texts given")
    row_of = {text: row for row, text in enumerate(distinct)}
    return torch.cat(features)[[row_of[text] for text in texts]]


def cached_image_features(
    model: torch.nn.Module,
    processor,
    images: Sequence,
    cache_file: str | Path | None,
    batch_size: int = 64,
    autocast_dtype: torch.dtype | None = None,
) -> torch.Tensor:
    """`encode_images`, stored in / read back from a `.npy` file when `cache_file` is given.

    The cache is keyed by its path only: use one file per (model, split). A file whose row count differs from the
    number of images is an error, not a silent re-use.
    """
    if cache_file is None:
        return encode_images(model, processor, images, batch_size, autocast_dtype)
    cache_file = Path(cache_file)
    if cache_file.suffix != ".npy":
        raise ValueError(f"{cache_file}: feature cache files must end in .npy")
    if cache_file.is_file():
        features = np.load(cache_file)
        if features.ndim != 2 or features.shape[0] != len(images):
            raise ValueError(
                f"{cache_file}: cached features have shape {features.shape}, expected {len(images)} rows "
                "(delete the file to recompute)"
            )
        return torch.from_numpy(features)
    features = encode_images(model, processor, images, batch_size, autocast_dtype)
    cache_file.parent.mkdir(parents=True, exist_ok=True)
    partial = cache_file.with_name(cache_file.stem + ".partial.npy")
    np.save(partial, features.numpy())
    partial.replace(cache_file)  # atomic: a killed run never leaves a truncated cache behind
    return features
