"""The training loop every trainer drives: SARCLIP `fit`, the SCIO stages and KnowLIP `finetune` each say how one
batch becomes a backpropagated loss (`StepLoss`); the epoch (`GuardedOptimizer.train_epoch`) and the rest of a step are
here, so the collapse guard, the schedule, the progress bar and the checkpoints behave the same in every trainer.

A step (`GuardedOptimizer.step`, after backward): clip the gradient when asked, average the watched loss (and any
other losses shown in the guard's messages) over processes, let the collapse guard observe them and the gradient norm
(a non-finite loss or gradient stops the run here, before the weights change), then optimizer, scheduler (one
schedule step per optimizer step, whatever the process count) and the step count. `check` measures the feature
spread of the fixed probe batch for the guard; `save_checkpoint` keeps the last healthy checkpoint from pruning.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path

import torch
from tqdm.auto import tqdm

from .checkpointing import TrainerState, save_checkpoint
from .collapse_guard import CollapseGuard, gradient_norm, probe_spread


@dataclasses.dataclass
class StepLoss:
    """One batch, forward and backward done: the loss the collapse guard watches and its uniform value ln B, other
    losses its messages name (e.g. the summed multi-task loss), and numbers the epoch record averages."""

    watched: torch.Tensor
    uniform: float
    others: Mapping[str, torch.Tensor] = dataclasses.field(default_factory=dict)
    record: Mapping[str, float] = dataclasses.field(default_factory=dict)


def _mean(losses: list[StepLoss]) -> StepLoss:
    """One step's losses from its accumulated batches' (the mean of each)."""
    if len(losses) == 1:
        return losses[0]
    count = len(losses)
    return StepLoss(sum(loss.watched for loss in losses) / count, sum(loss.uniform for loss in losses) / count,
                    {name: sum(loss.others[name] for loss in losses) / count for name in losses[0].others},
                    {name: sum(loss.record[name] for loss in losses) / count for name in losses[0].record})


class GuardedOptimizer:
    """`model`'s optimizer and scheduler, stepped under `guard` (module docstring). `probe`: a fixed batch whose
    feature spread `check` measures (`probe_encoder`: the image features to measure, default the model's own).
    `accumulation`: batches whose gradients `train_epoch` sums into one step (`backward` scales each loss by
    1 / accumulation; SARCLIP accumulates inside its batch instead, GradCache, and leaves this at 1)."""

    def __init__(self, accelerator, model: torch.nn.Module, optimizer, scheduler, guard: CollapseGuard,
                 probe: Mapping[str, torch.Tensor] | None = None, probe_encoder: Callable | None = None,
                 max_grad_norm: float | None = None, accumulation: int = 1):
        self.accelerator, self.model, self.optimizer, self.scheduler = accelerator, model, optimizer, scheduler
        self.guard, self.probe, self.probe_encoder, self.max_grad_norm = guard, probe, probe_encoder, max_grad_norm
        self.accumulation = accumulation
        self.last_check: dict[str, float] = {}  # what the latest check logged

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

    def backward(self, loss: torch.Tensor) -> None:
        """Backward of one batch's loss, scaled for `accumulation`."""
        self.accelerator.backward(loss / self.accumulation if self.accumulation > 1 else loss)

    def train_epoch(self, state: TrainerState, batches: Iterable, forward_backward: Callable[[dict], StepLoss | None],
                    desc: str | None = None, check: bool = True,
                    after_step: Callable[[list[float]], bool] | None = None) -> dict:
        """One pass over `batches`: `forward_backward(batch)` (None: the batch is skipped, e.g. one image only), then a
        `step` every `accumulation` batches (their losses averaged; a last, shorter group steps with its gradient
        rescaled to a mean over its own batches); with `check` the guard's checks every `CHECK_EVERY` steps and at the
        end of the epoch. `after_step` (the process-averaged losses) may log or checkpoint, and returns True to end the
        epoch early. `desc`: the progress bar's label (None: no bar). Returns the averages of the `StepLoss.record`
        numbers, the latest check's values, `steps` and `skipped_batches`."""
        totals: dict[str, float] = {}
        steps = skipped = 0
        pending: list[StepLoss] = []

        def step() -> bool:
            nonlocal steps
            if len(pending) < self.accumulation:  # the epoch's last, shorter group: a mean over its own batches
                for param in self.model.parameters():
                    if param.grad is not None:
                        param.grad.mul_(self.accumulation / len(pending))
            loss = _mean(pending)
            pending.clear()
            values = self.step(state, loss.watched, loss.uniform, loss.others)
            steps += 1
            for name, value in loss.record.items():
                totals[name] = totals.get(name, 0.0) + value
            if check and self.guard.check_due(state.global_step):
                self.check(state.global_step)
            return after_step is not None and after_step(values)

        show = desc is not None and self.accelerator.is_local_main_process
        stopped = False
        for batch in tqdm(batches, desc=desc, disable=not show, leave=False):
            loss = forward_backward(batch)
            if loss is None:
                skipped += 1
                continue
            pending.append(loss)
            if len(pending) == self.accumulation and step():
                stopped = True
                break
        if pending and not stopped:
            step()
        if check and steps and self.guard.check_due(state.global_step, end_of_epoch=True):
            self.check(state.global_step)
        return {**{name: total / steps for name, total in totals.items()}, **self.last_check, "steps": steps,
                "skipped_batches": skipped}

    def check(self, step: int) -> dict[str, float]:
        """The guard's check at `step`: the probe batch's feature spread and the loss since the last check."""
        spread = () if self.probe is None else probe_spread(self.accelerator.unwrap_model(self.model), self.probe,
                                                            self.accelerator, self.probe_encoder)
        self.last_check = self.guard.check(step, *spread)
        return self.last_check

    def save_checkpoint(self, folder: Path, state: TrainerState, keep: int | None) -> Path:
        state.guard = self.guard.state_dict()
        saved = save_checkpoint(self.accelerator, folder, state, keep, protect=self.guard.protect)
        self.guard.checkpoint_saved(saved)
        return saved
