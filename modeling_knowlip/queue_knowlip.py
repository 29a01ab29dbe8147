"""Momentum feature queues for ITC (paper 4.1: 20,000 image-text features; ALBEF/MoCo-style)."""

import torch
import torch.nn.functional as F
from torch import nn


class SarKnowlipFeatureQueue(nn.Module):
    """Ring buffers of L2-normalised momentum image and text features plus the image id and the positive-group id
    (caption or class, see `losses_knowlip.positive_mask`) of each entry.

    Buffers are persistent, so a saved checkpoint resumes with the same queue. Fresh queues hold random unit vectors
    (as in ALBEF) and id -1, which matches no real image id.
    """

    def __init__(self, embed_dim: int, size: int):
        super().__init__()
        self.register_buffer("image_feats", F.normalize(torch.randn(size, embed_dim), dim=1))
        self.register_buffer("text_feats", F.normalize(torch.randn(size, embed_dim), dim=1))
        self.register_buffer("image_ids", torch.full((size,), -1, dtype=torch.long))
        self.register_buffer("group_ids", torch.full((size,), -1, dtype=torch.long))
        self.register_buffer("ptr", torch.zeros(1, dtype=torch.long))

    @property
    def size(self) -> int:
        return self.image_feats.shape[0]

    @torch.no_grad()
    def enqueue(self, image_feats: torch.Tensor, text_feats: torch.Tensor, image_ids: torch.Tensor | None = None,
                group_ids: torch.Tensor | None = None):
        """Write the batch at the pointer, wrapping around the end; the oldest entries are overwritten.

        A batch longer than the queue keeps only its last `size` rows.
        """
        if image_ids is None:
            image_ids = torch.full((image_feats.shape[0],), -1, dtype=torch.long, device=image_feats.device)
        if group_ids is None:
            group_ids = torch.full((image_feats.shape[0],), -1, dtype=torch.long, device=image_feats.device)
        image_feats, text_feats = image_feats[-self.size :], text_feats[-self.size :]
        image_ids, group_ids = image_ids[-self.size :], group_ids[-self.size :]
        count = image_feats.shape[0]
        slots = (self.ptr + torch.arange(count, device=self.ptr.device)) % self.size
        self.image_feats[slots] = image_feats.to(self.image_feats.dtype)
        self.text_feats[slots] = text_feats.to(self.text_feats.dtype)
        self.image_ids[slots] = image_ids
        self.group_ids[slots] = group_ids.to(self.group_ids.dtype)
        self.ptr.copy_((self.ptr + count) % self.size)


__all__ = ["SarKnowlipFeatureQueue"]
