"""InfoNCE over the features of all processes, with gradients through the gather (open_clip `ClipLoss` local loss)."""

from __future__ import annotations

import torch
import torch.distributed as dist
import torch.distributed.nn.functional as dist_fn
import torch.nn.functional as F


def gather_with_grad(features: torch.Tensor) -> torch.Tensor:
    """Concatenate `features` of every process in rank order; gradients flow back to each process's own rows.

    `accelerator.gather` has no autograd; `torch.distributed.nn.functional.all_gather` does.
    """
    if not (dist.is_available() and dist.is_initialized()) or dist.get_world_size() == 1:
        return features
    return torch.cat(dist_fn.all_gather(features), dim=0)


def distributed_contrastive_loss(
    image_embeds: torch.Tensor, text_embeds: torch.Tensor, logit_scale: torch.Tensor
) -> torch.Tensor:
    """Symmetric InfoNCE (SARCLIP eq. 1) of this process's pairs against the pairs of all processes.

    Each process scores its local images against all texts and its local texts against all images; the targets are
    its rows' global indices (local index + rank * local batch). Averaged over processes by data-parallel gradient
    averaging, this is exactly the loss of one process on the full batch. All processes must use the same local
    batch size.
    """
    all_images, all_texts = gather_with_grad(image_embeds), gather_with_grad(text_embeds)
    rank = dist.get_rank() if dist.is_available() and dist.is_initialized() else 0
    labels = torch.arange(image_embeds.shape[0], device=image_embeds.device) + rank * image_embeds.shape[0]
    logits_per_image = logit_scale * image_embeds @ all_texts.t()
    logits_per_text = logit_scale * text_embeds @ all_images.t()
    return (F.cross_entropy(logits_per_image, labels) + F.cross_entropy(logits_per_text, labels)) / 2
