"""One optimizer step's forward/backward, with GradCache-style feature caching for gradient accumulation.

A contrastive loss does not decompose over micro-batches: accumulating per-micro-batch losses would shrink the set
of negatives to one micro-batch. Instead (Gao et al. 2021, "Scaling Deep Contrastive Learning Batch Size under Memory
Limited Setup"): (1) embed every micro-batch without a graph, (2) compute the loss of the whole accumulated batch
(gathered over processes) on those cached embeddings and backpropagate it to the embeddings only, (3) re-embed each
micro-batch with a graph and backpropagate the cached embedding gradients into the parameters. The gradients equal
those of one forward on the full batch; memory is that of one micro-batch plus the embeddings.
"""

from __future__ import annotations

import contextlib

import torch
from accelerate import Accelerator
from torch import nn

from modeling_sarclip.loss_sarclip import contrastive_loss


def contrastive_step(
    model: nn.Module, batch: dict[str, torch.Tensor], accelerator: Accelerator, num_micro_batches: int = 1,
    prompt_loss_weight: float = 0.0,
) -> torch.Tensor:
    """Forward + backward of one step's batch (this process's share); returns this process's loss, detached.

    `model` is a (prepared) `SarclipModel` or a peft model around one; `batch` holds `pixel_values`, `input_ids` and
    optionally `group_ids` (pairs with equal ids are positives, see `loss_sarclip.contrastive_loss`). Without
    accumulation the model computes its own loss (`return_loss=True`), plus `prompt_loss_weight` times its prompt
    loss when the batch holds `class_input_ids` and `labels`; with accumulation, the cached embeddings are scored by
    the same contrastive loss function (no prompt loss). The model runs with `pooled_only=True`: each tower's last
    block at its pooled token only (the same embeddings, less work).
    """
    if num_micro_batches == 1:
        with accelerator.autocast():
            output = model(**batch, return_loss=True, pooled_only=True)
            loss = output.loss if output.prompt_loss is None else output.loss + prompt_loss_weight * output.prompt_loss
        accelerator.backward(loss)
        return loss.detach()

    size = batch["pixel_values"].shape[0]
    if size % num_micro_batches:
        raise ValueError(f"batch of {size} does not split into {num_micro_batches} equal micro-batches")
    micro_batches = [dict(zip(batch, values)) for values in zip(*(v.chunk(num_micro_batches) for v in batch.values()))]

    # (1) cached embeddings; RNG states and buffers (BatchNorm running stats) are restored for the replay in (3)
    group_ids = batch.get("group_ids")
    micro_batches = [{k: v for k, v in micro.items() if k != "group_ids"} for micro in micro_batches]
    buffers = {name: b.clone() for name, b in model.named_buffers()}
    rng_states, cached = [], []
    with torch.no_grad():
        for micro in micro_batches:
            rng_states.append(_rng_state())
            with accelerator.autocast():
                cached.append(_embeddings(model(**micro, pooled_only=True)))
    with torch.no_grad():
        for name, b in model.named_buffers():
            b.copy_(buffers[name])

    # (2) loss of the full accumulated batch; gradients reach only the cached embeddings and the temperature
    image = torch.cat([c[0] for c in cached]).requires_grad_()
    text = torch.cat([c[1] for c in cached]).requires_grad_()
    scale = cached[0][2].clone().requires_grad_()
    loss = contrastive_loss(image, text, scale, group_ids)
    loss.backward()

    # (3) replay each micro-batch with a graph; gradient sync (DDP) only on the last one
    image_grads, text_grads = image.grad.chunk(num_micro_batches), text.grad.chunk(num_micro_batches)
    for i, micro in enumerate(micro_batches):
        sync = i == num_micro_batches - 1
        with contextlib.nullcontext() if sync else accelerator.no_sync(model):
            _set_rng_state(rng_states[i])
            with accelerator.autocast():
                micro_image, micro_text, micro_scale = _embeddings(model(**micro, pooled_only=True))
            # a scalar whose gradient w.r.t. the parameters is the cached gradient pushed through this micro-batch
            surrogate = (micro_image * image_grads[i]).sum() + (micro_text * text_grads[i]).sum()
            surrogate = surrogate + micro_scale * (scale.grad / num_micro_batches)
            accelerator.backward(surrogate)
    return loss.detach()


def _embeddings(output) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Normalised image and text embeddings and exp(logit_scale) of a `SarclipOutput`, in float32 for the loss."""
    return output.image_embeds.float(), output.text_embeds.float(), output.logit_scale.float()


def _rng_state():
    return torch.get_rng_state(), torch.cuda.get_rng_state_all() if torch.cuda.is_available() else None


def _set_rng_state(state) -> None:
    cpu, cuda = state
    torch.set_rng_state(cpu)
    if cuda is not None:
        torch.cuda.set_rng_state_all(cuda)
