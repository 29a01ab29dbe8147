"""SAR-KnowLIP losses (paper eqs. 4-7) and the momentum-encoder helpers they rely on (ALBEF, paper ref. [52])."""

import torch
import torch.distributed as dist
import torch.nn.functional as F
from torch import nn


def effective_parameters(module: nn.Module) -> dict[str, torch.Tensor]:
    """The weights `module` computes with, named as in a plain copy of it: a peft LoRA layer contributes its base
    weight plus the delta B A * scale of its active adapters (unless already merged) under the base layer's names.

    LoRA layers are recognised by duck typing (`base_layer` + `get_delta_weight`): this folder must load without peft.
    """
    weights, lora_prefixes = {}, []
    for name, sub in module.named_modules():
        if any(name.startswith(prefix) for prefix in lora_prefixes):
            continue  # inside a LoRA layer: base_layer, lora_A/B, dropout
        prefix = f"{name}." if name else ""
        if hasattr(sub, "base_layer") and hasattr(sub, "get_delta_weight"):
            lora_prefixes.append(prefix)
            for param_name, param in sub.base_layer.named_parameters():
                weights[prefix + param_name] = param.detach()
            if not sub.merged:
                for adapter in sub.active_adapters:
                    if adapter in sub.lora_A:
                        weights[prefix + "weight"] = weights[prefix + "weight"] + sub.get_delta_weight(adapter)
            continue
        for param_name, param in sub.named_parameters(recurse=False):
            weights[prefix + param_name] = param.detach()
    return weights


@torch.no_grad()
def momentum_update(online: nn.Module, momentum_module: nn.Module, momentum: float) -> None:
    """EMA of the online weights: p_m <- momentum * p_m + (1 - momentum) * p (`momentum=0` copies).

    With LoRA on the online towers, p is the effective weight W + B A * scale (`effective_parameters`), so the
    momentum encoders stay an EMA of the model that is actually trained, as in ALBEF. Choice: the alternative, momentum
    encoders frozen at the base weights, would make the distillation targets and the queued negatives come from the
    un-adapted model for the whole run. Since W is frozen, this EMA equals W + EMA(B A * scale).
    """
    weights = effective_parameters(online)
    targets = dict(momentum_module.named_parameters())
    if weights.keys() != targets.keys():
        raise ValueError(f"momentum encoder and online encoder differ: {sorted(weights.keys() ^ targets.keys())[:5]}")
    for name, param_m in targets.items():
        param_m.mul_(momentum).add_(weights[name].to(param_m.dtype), alpha=1.0 - momentum)


@torch.no_grad()
def gather_from_all_processes(tensor: torch.Tensor) -> torch.Tensor:
    """Concatenate `tensor` over all processes (no gradient) when torch.distributed is initialised.

    Used only for what goes into the feature queues, as in ALBEF: each process computes ITC and ITM with its local
    batch as in-batch pairs, and every process's momentum features reach all queues, so all of them serve as ITC
    negatives from the next step on.
    """
    if not (dist.is_available() and dist.is_initialized()) or dist.get_world_size() == 1:
        return tensor
    gathered = [torch.empty_like(tensor) for _ in range(dist.get_world_size())]
    dist.all_gather(gathered, tensor.contiguous())
    return torch.cat(gathered, dim=0)


def positive_mask(image_ids: torch.Tensor | None, candidate_ids: torch.Tensor | None, batch_size: int,
                  num_candidates: int, device: torch.device, group_ids: torch.Tensor | None = None,
                  candidate_group_ids: torch.Tensor | None = None) -> torch.Tensor:
    """(B, C) bool: which candidates are positives of each sample.

    Without `image_ids` only the diagonal of the first B candidates (the sample's own pair) is positive; with them,
    every candidate from the same image is (several captions of one image are not each other's negatives). With
    `group_ids` (and `candidate_group_ids`, the candidates' groups; ids < 0 match nothing), every candidate of the
    same group is positive too: the same caption string, or the same class where the data has labels (the rule of
    SARCLIP's `loss_sarclip.contrastive_loss`, whose `group_ids` these are).
    """
    if image_ids is None:
        positives = torch.eye(batch_size, num_candidates, dtype=torch.bool, device=device)
    else:
        positives = same_id(image_ids, candidate_ids)
    if group_ids is not None:
        if candidate_group_ids is None:
            raise ValueError("positive_mask: group_ids needs candidate_group_ids")
        positives = positives | same_id(group_ids, candidate_group_ids)
    return positives


def same_id(ids: torch.Tensor, candidate_ids: torch.Tensor) -> torch.Tensor:
    """(B, C) bool: ids[b] == candidate_ids[c], where ids < 0 (empty queue slots) match nothing."""
    return (ids[:, None] == candidate_ids[None, :]) & (ids[:, None] >= 0)


def soft_contrastive_loss(logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """Mean over rows of -sum_j targets_ij log softmax(logits)_ij; with one-hot targets this is eq. 4."""
    return -(F.log_softmax(logits, dim=1) * targets).sum(dim=1).mean()


def itc_targets(positives: torch.Tensor, momentum_logits: torch.Tensor, alpha: float) -> torch.Tensor:
    """ALBEF momentum distillation: alpha * softmax(momentum similarities) + (1 - alpha) * ground truth.

    The ground truth spreads its mass evenly over all positives of a row (one positive without image ids).
    """
    hard = positives.float() / positives.sum(dim=1, keepdim=True)
    return alpha * F.softmax(momentum_logits, dim=1) + (1.0 - alpha) * hard


def pairwise_itc_loss(image_feat: torch.Tensor, text_feat: torch.Tensor, image_bank: torch.Tensor,
                      text_bank: torch.Tensor, temp: torch.Tensor, bank_exclude: torch.Tensor | None = None) -> torch.Tensor:
    """Per-sample symmetric ITC loss (eq. 4) of aligned pairs (image_feat[i], text_feat[i]), shape (B,).

    The negatives t' (v') are the rows of a fixed bank (the model's feature queues) rather than the other samples of
    the batch, so a pair's loss does not depend on what else is in the batch: L(v_i, t) can be compared across
    different texts t of the same image (SCIO eqs. 10 and 14). `bank_exclude` (B, Q) drops bank rows from a sample's
    negatives (the queued features of its own image, which are not negatives).
    """
    positive = (image_feat * text_feat).sum(dim=1, keepdim=True)
    i2t_neg, t2i_neg = image_feat @ text_bank.t(), text_feat @ image_bank.t()
    if bank_exclude is not None:
        i2t_neg = i2t_neg.masked_fill(bank_exclude, float("-inf"))
        t2i_neg = t2i_neg.masked_fill(bank_exclude, float("-inf"))
    i2t = torch.cat([positive, i2t_neg], dim=1) / temp
    t2i = torch.cat([positive, t2i_neg], dim=1) / temp
    return -(F.log_softmax(i2t, dim=1)[:, 0] + F.log_softmax(t2i, dim=1)[:, 0]) / 2


def sample_hard_negatives(similarity: torch.Tensor, positives: torch.Tensor, allow_none: bool = False) -> torch.Tensor:
    """For each row, draw one column with probability softmax(similarity) restricted to the non-positives (ALBEF).

    similarity, positives: (B, B). Returns (B,) column indices, never a positive; with `allow_none`, -1 for a row
    that has no non-positive column (all of the batch in its caption/class group) instead of an error.
    """
    empty = (~positives).sum(dim=1).eq(0)
    if allow_none and empty.any():
        picked = torch.full((similarity.shape[0],), -1, dtype=torch.long, device=similarity.device)
        if (~empty).any():
            picked[~empty] = sample_hard_negatives(similarity[~empty], positives[~empty])
        return picked
    if empty.any():
        raise ValueError(
            "ITM hard-negative mining needs at least one in-batch negative for every sample "
            "(batch of size 1, or all samples share one image id)"
        )
    weights = F.softmax(similarity.float().masked_fill(positives, float("-inf")), dim=1)
    return torch.multinomial(weights, 1).squeeze(1)


def itm_loss(logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """Eq. 5, binary cross-entropy -y log p - (1-y) log(1-p), written as 2-way softmax cross-entropy (ALBEF/BLIP)."""
    return F.cross_entropy(logits, labels)


def lm_loss(logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """Eq. 6 over the masked fragment tokens (labels -100 elsewhere).

    Choice: averaged over target tokens (eq. 6 writes a sum) so the scale does not grow with fragment length and the
    equal weights of eq. 7 stay meaningful. Returns 0 (with a graph) when there is no target token at all.
    """
    if labels.ne(-100).sum() == 0:
        return logits.sum() * 0.0
    return F.cross_entropy(logits.reshape(-1, logits.shape[-1]), labels.reshape(-1), ignore_index=-100)


__all__ = [
    "effective_parameters",
    "momentum_update",
    "gather_from_all_processes",
    "positive_mask",
    "same_id",
    "soft_contrastive_loss",
    "itc_targets",
    "pairwise_itc_loss",
    "sample_hard_negatives",
    "itm_loss",
    "lm_loss",
]
