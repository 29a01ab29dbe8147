"""The optimizer step every trainer takes: SARCLIP `fit`, the SCIO stages and KnowLIP `finetune` each compute their
loss and call `backward`; the rest of a step is here, so the collapse guard, the schedule and the checkpoints behave
the same in every loop.

A step (`GuardedOptimizer.step`, after backward): clip the gradient when asked, average the watched loss (and any
other losses shown in the guard's messages) over processes, let the collapse guard observe them and the gradient norm
(a non-finite loss or gradient stops the run here, before the weights change), then optimizer, scheduler (one
schedule step per optimizer step, whatever the process count) and the step count. `check` measures the feature
spread of the fixed probe batch for the guard; `save_checkpoint` keeps the last healthy checkpoint from pruning.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from pathlib import Path

import torch

from .checkpointing import TrainerState, save_checkpoint
from .collapse_guard import CollapseGuard, gradient_norm, probe_spread


class GuardedOptimizer:
    """`model`'s optimizer and scheduler, stepped under `guard` (module docstring). `probe`: a fixed batch whose
    feature spread `check` measures (`probe_encoder`: the image features to measure, default the model's own)."""

    def __init__(self, accelerator, model: torch.nn.Module, optimizer, scheduler, guard: CollapseGuard,
                 probe: Mapping[str, torch.Tensor] | None = None, probe_encoder: Callable | None = None,
                 max_grad_norm: float | None = None):
        self.accelerator, self.model, self.optimizer, self.scheduler = accelerator, model, optimizer, scheduler
        self.guard, self.probe, self.probe_encoder, self.max_grad_norm = guard, probe, probe_encoder, max_grad_norm

    def step(self, state: TrainerState, watched: torch.Tensor, uniform: float,
             others: Mapping[str, torch.Tensor] | None = None) -> list[float]:
        """One optimizer step after backward; `watched` is the loss the guard compares with its `uniform` value.
        Returns the process-averaged `[watched, *others.values()]`."""
        accelerator, others = self.accelerator, dict(others or {})
        if self.max_grad_norm:
            norm = accelerator.clip_grad_norm_(self.model.parameters(), self.max_grad_norm)
        else:
            norm = gradient_norm(self.model)
        if accelerator.mixed_precision == "fp16":  # the loss scaler skips steps with inf gradients by design
            norm = None
        values = accelerator.reduce(torch.stack([watched.detach().float(), *(loss.detach().float() for loss in
                                                                             others.values())]), reduction="mean")
        values = values.tolist()
        self.guard.observe(state.global_step + 1, values[0], uniform, norm, dict(zip(others, values[1:])))
        self.optimizer.step()
        self.scheduler.step()
        self.optimizer.zero_grad(set_to_none=True)
        state.global_step += 1
        return values

    def check(self, step: int) -> dict[str, float]:
        """The guard's check at `step`: the probe batch's feature spread and the loss since the last check."""
        spread = () if self.probe is None else probe_spread(self.accelerator.unwrap_model(self.model), self.probe,
                                                            self.accelerator, self.probe_encoder)
        return self.guard.check(step, *spread)

    def save_checkpoint(self, folder: Path, state: TrainerState, keep: int | None) -> Path:
        state.guard = self.guard.state_dict()
        saved = save_checkpoint(self.accelerator, folder, state, keep, protect=self.guard.protect)
        self.guard.checkpoint_saved(saved)
        return saved
