"""SARCLIP's contrastive loss: symmetric InfoNCE (paper eq. 1) over the pairs of all processes, with gradients
through the gather (open_clip `ClipLoss` with `gather_with_grad=True, local_loss=True`), and its multi-positive form
for captions that repeat.

Kept in the model folder (sibling-relative imports only) so that `SarclipModel.forward(return_loss=True)` works in a
folder loaded with `trust_remote_code`; training calls the model, not a copy of this loss.
"""

import torch
import torch.distributed as dist
import torch.nn.functional as F


def _world() -> tuple[int, int]:
    if dist.is_available() and dist.is_initialized():
        return dist.get_rank(), dist.get_world_size()
    return 0, 1


def gather_with_grad(features: torch.Tensor) -> torch.Tensor:
    """`features` of every process, concatenated in rank order; gradients flow back to each process's own rows.

    (`accelerator.gather` has no autograd; `torch.distributed.nn.functional.all_gather` does.)
    """
    if _world()[1] == 1:
        return features
    import torch.distributed.nn.functional as dist_fn

    return torch.cat(dist_fn.all_gather(features), dim=0)


def gather_no_grad(values: torch.Tensor) -> torch.Tensor:
    """Integer labels of every process, concatenated in rank order (no gradient needed)."""
    if _world()[1] == 1:
        return values
    gathered = [torch.empty_like(values) for _ in range(_world()[1])]
    dist.all_gather(gathered, values.contiguous())
    return torch.cat(gathered)


def contrastive_loss(
    image_embeds: torch.Tensor,
    text_embeds: torch.Tensor,
    logit_scale: torch.Tensor,
    group_ids: torch.Tensor | None = None,
) -> torch.Tensor:
    """Symmetric InfoNCE of this process's pairs against the pairs of all processes.

    Args:
        image_embeds, text_embeds: L2-normalised `(local_batch, dim)` embeddings of matching pairs.
        logit_scale: the temperature multiplier `exp(t)` (a scalar).
        group_ids: optional `(local_batch,)` integer ids; pairs with equal ids are positives for each other (the
            same caption string, or the same class label). Each row's target is then uniform over its positives
            (multi-positive InfoNCE, as in SupCon / UniCL); with all ids distinct it is exactly InfoNCE.

    Each process scores its local images against all texts and its local texts against all images; targets are its
    rows' global indices. Averaged over processes by data-parallel gradient averaging this is the loss of one
    process on the full batch. All processes must use the same local batch size.
    """
    rank, _ = _world()
    all_images, all_texts = gather_with_grad(image_embeds), gather_with_grad(text_embeds)
    logits_per_image = logit_scale * image_embeds @ all_texts.t()
    logits_per_text = logit_scale * text_embeds @ all_images.t()
    local = image_embeds.shape[0]
    if group_ids is None:
        labels = torch.arange(local, device=image_embeds.device) + rank * local
        return (F.cross_entropy(logits_per_image, labels) + F.cross_entropy(logits_per_text, labels)) / 2
    all_ids = gather_no_grad(group_ids.to(image_embeds.device))
    positives = (group_ids.to(all_ids.device)[:, None] == all_ids[None, :]).to(logits_per_image.dtype)
    targets = positives / positives.sum(dim=1, keepdim=True)
    return (F.cross_entropy(logits_per_image, targets) + F.cross_entropy(logits_per_text, targets)) / 2


def prompt_classification_loss(image_embeds: torch.Tensor, class_embeds: torch.Tensor, logit_scale: torch.Tensor,
                               labels: torch.Tensor) -> torch.Tensor:
    """Cross-entropy of each image against the prompt embeddings of every class: the zero-shot classifier, trained
    directly (CLIP-LoRA, Zanella & Ben Ayed 2024; CoOp). `image_embeds` `(B, D)` and `class_embeds` `(C, D)`
    L2-normalised, `labels` `(B,)` class indices. Its uniform value is ln C. One embedding for every image scores
    only the class prior here, while for in-batch InfoNCE it is a resting point at exactly ln B (the way a LoRA run
    from a confidently wrong base collapses, docs/EXPERIMENTS.md)."""
    return F.cross_entropy(logit_scale * image_embeds @ class_embeds.t(), labels.to(image_embeds.device))


__all__ = ["contrastive_loss", "gather_no_grad", "gather_with_grad", "prompt_classification_loss"]
