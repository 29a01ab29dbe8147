"""Run under `accelerate launch` (2 CPU processes): one training step's loss and gradients on this rank's shard.

argv: MODEL_DIR BATCH_FILE OUT_FILE. Rank r takes rows [r*n/W, (r+1)*n/W) of the batch; for 1 and 2 micro-batches
(GradCache), with and without the batch's `group_ids` (multi-positive loss), rank 0 saves the mean loss over processes
and the (DDP-averaged) gradients.
"""

import sys

import torch
from accelerate import Accelerator

from modeling_sarclip import SarclipModel
from train.sarclip.grad_cache import contrastive_step


def main(model_dir: str, batch_file: str, out_file: str) -> None:
    accelerator = Accelerator(cpu=True)
    model = SarclipModel.from_pretrained(model_dir).train()
    prepared = accelerator.prepare(model)
    batch = torch.load(batch_file)
    share = batch["pixel_values"].shape[0] // accelerator.num_processes
    rows = slice(accelerator.process_index * share, (accelerator.process_index + 1) * share)
    results = {"world_size": accelerator.num_processes}
    for num_micro_batches, grouped in ((1, False), (2, False), (1, True), (2, True)):
        model.zero_grad(set_to_none=True)
        local = {k: v[rows] for k, v in batch.items() if grouped or k != "group_ids"}
        loss = contrastive_step(prepared, local, accelerator, num_micro_batches)
        results[num_micro_batches, grouped] = {
            "loss": accelerator.reduce(loss, reduction="mean"),
            "grads": {n: p.grad.clone() for n, p in model.named_parameters()},
        }
    if accelerator.is_main_process:
        torch.save(results, out_file)
    accelerator.wait_for_everyone()


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2], sys.argv[3])
