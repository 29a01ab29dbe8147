"""The collapse guard of every trainer (SARCLIP `fit`, SCIO, KnowLIP `finetune`): stop a run that has stopped
learning instead of training it to the end and saving a useless model.

What it watches:

- the loss against its **uniform value** ln B: the cross-entropy of uniform logits over B candidates is ln B whatever
  the targets (one-hot, multi-positive or distilled soft targets all sum to 1), so a contrastive loss that sits at
  ln B means the model scores every candidate alike. B is the number of candidates a row is scored against: SARCLIP
  the global batch (`batch_size x gradient_accumulation_steps x processes`), SAR-KnowLIP's ITC the process's batch
  plus the momentum queue (its negatives; the queue starts full of random unit vectors, so B = batch + queue_size
  from the first step), classification the number of classes;
- the **feature spread**: the mean pairwise cosine similarity of the model's L2-normalised image (and text)
  embeddings of a fixed probe batch of training examples (`PROBE_SIZE`, chosen evenly over the data at the start). A
  spread near 1 means every input maps to the same point (a collapsed encoder; the loss then sits at ln B too);
- **finiteness**: a non-finite loss or gradient norm stops the run at once, before the optimizer applies the step.

Rules: a check is due every few steps (the trainer's log interval); the run is *suspect* from the first check, after
the warm-up (`grace_steps`: the loss legitimately sits near ln B while the learning rate is tiny), at which the mean
loss / ln B of the steps since the last check is within `loss_tolerance` of 1 or a spread exceeds `cosine`. Then one
warning is printed; a check that no longer meets the condition ends the episode ("recovered"). When the condition has
held for `patience` steps, `TrainingCollapsedError` is raised (a `ValueError`: the CLI layer prints it as
`error: training collapsed at step N (...); best checkpoint: PATH; try ...` and exits 2). `patience = 0` switches the
plateau / spread stop (and the probe forward passes) off; the non-finite stop always applies.

Best checkpoint: the last checkpoint saved while the latest check met neither condition (the trainers report every
save with `checkpoint_saved`; a resumed run starts from its checkpoint). While the latest check does meet one (also
during the warm-up), `protect` names it and `save_checkpoint(..., protect=...)` never prunes it, so the run stops with
it on disk whatever `keep_checkpoints` is.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from pathlib import Path

import torch
import torch.nn.functional as F

PROBE_SIZE = 64  # training examples in the probe batch
DEFAULT_PATIENCE = 200  # steps the condition must hold (after the warm-up) before the run is stopped
DEFAULT_COSINE = 0.999  # mean pairwise cosine above which the features count as collapsed
LOSS_TOLERANCE = 0.01  # |loss / ln B - 1| below this: the loss sits at its uniform value
CHECK_EVERY = 10  # steps between checks where a trainer has no log interval of its own
REMEDIES = ("try a lower learning_rate (e.g. a tenth), a longer warm-up (warmup_steps / warmup_ratio), per-chip "
            "standardisation of the SAR images (image processor option `standardize: per_image`), and check the "
            "data (do the images of a batch differ? do the captions / labels match the images?)")


class TrainingCollapsedError(ValueError):
    """The run stopped learning (loss at ln B, collapsed features) or produced a non-finite loss or gradient.

    A user error (`ValueError`): the trainers' CLI layer (`sar_utils.command_line.run_cli`) prints
    `error: <message>` without a traceback and exits 2. `step`, `best_checkpoint` (a Path or None) and `reason` are
    kept for callers.
    """

    def __init__(self, message: str, step: int, best_checkpoint: Path | None, reason: str):
        super().__init__(message)
        self.step, self.best_checkpoint, self.reason = step, best_checkpoint, reason


def feature_spread(features: torch.Tensor) -> float:
    """Mean pairwise cosine similarity of the rows of an (N, D) feature matrix: the off-diagonal mean of the Gram
    matrix of the L2-normalised rows. 1.0: all rows point the same way (collapse); about 0 for spread features.
    NaN when fewer than 2 rows or when a feature is not finite."""
    if features.ndim != 2:
        raise ValueError(f"feature_spread expects an (N, D) matrix, got shape {tuple(features.shape)}")
    n = features.shape[0]
    if n < 2 or not torch.isfinite(features).all():
        return math.nan
    unit = F.normalize(features.detach().double(), dim=1)
    # sum over i != j of u_i . u_j = |sum_i u_i|^2 - sum_i |u_i|^2: O(N D), no N x N Gram matrix (test splits are big)
    mean = float((unit.sum(dim=0).square().sum() - unit.square().sum()) / (n * (n - 1)))
    return min(1.0, max(-1.0, mean))  # rounding can step past +-1


def uniform_loss(candidates: int) -> float:
    """ln B: the cross-entropy of uniform logits over B candidates, for any target distribution (one-hot, the
    multi-positive loss's uniform mass over the positives, or distilled soft targets), since the targets sum to 1."""
    if candidates < 1:
        raise ValueError(f"uniform_loss needs at least one candidate, got {candidates}")
    return math.log(candidates)


def probe_indices(num_examples: int, size: int = PROBE_SIZE) -> list[int]:
    """`size` example indices spread evenly over `range(num_examples)` (deterministic; datasets are often sorted by
    class, so the first rows alone could be one class)."""
    if num_examples <= size:
        return list(range(num_examples))
    return sorted({round(i * (num_examples - 1) / (size - 1)) for i in range(size)})


@torch.no_grad()
def probe_spread(model: torch.nn.Module, batch: Mapping[str, torch.Tensor], accelerator=None,
                 image_encoder: Callable[[torch.nn.Module, torch.Tensor], torch.Tensor] | None = None,
                 ) -> tuple[float, float | None]:
    """(image spread, text spread) of a collated probe batch, from the model's `get_image_features` /
    `get_text_features` (`pooler_output`, the projected embeddings; SARCLIP and SAR-KnowLIP, bare or under peft), in
    eval mode (restored afterwards).

    Rows of one image (`image_ids`: several captions or questions per image) count once, and texts are deduplicated
    (template captions repeat); the text spread is None without `input_ids` or with fewer than 2 distinct texts.
    `image_encoder(model, pixel_values)` replaces `get_image_features` (e.g. a classifier's [CLS] state). With an
    `accelerator` of several processes the values are averaged over them, so every process takes the same decision.
    """
    from ..evaluation.encode import eval_mode

    parameter = next(model.parameters())
    with eval_mode(model):
        pixel_values = batch["pixel_values"]
        if batch.get("image_ids") is not None:
            firsts = sorted({int(i): row for row, i in reversed(list(enumerate(batch["image_ids"])))}.values())
            pixel_values = pixel_values[firsts]
        pixel_values = pixel_values.to(parameter.device, parameter.dtype)
        if image_encoder is not None:
            image = image_encoder(model, pixel_values)
        else:
            image = model.get_image_features(pixel_values=pixel_values).pooler_output
        text_spread = None
        if batch.get("input_ids") is not None:
            input_ids = batch["input_ids"]
            mask = batch.get("attention_mask")
            rows = sorted({tuple(row.tolist()): i for i, row in enumerate(input_ids)}.values())
            if len(rows) >= 2:
                kwargs = {"input_ids": input_ids[rows].to(parameter.device)}
                if mask is not None:
                    kwargs["attention_mask"] = mask[rows].to(parameter.device)
                text_spread = feature_spread(model.get_text_features(**kwargs).pooler_output.float())
    image_spread = feature_spread(image.float())
    if accelerator is None or accelerator.num_processes == 1:
        return image_spread, text_spread
    both = torch.tensor([image_spread, math.nan if text_spread is None else text_spread], device=accelerator.device)
    image_spread, mean_text = accelerator.reduce(both, reduction="mean").tolist()
    return image_spread, None if text_spread is None else mean_text


def gradient_norm(model: torch.nn.Module) -> torch.Tensor | None:
    """The total L2 norm of the model's gradients (after backward; DDP has averaged them over the processes), for a
    trainer that does not clip (clipping returns it)."""
    grads = [p.grad for p in model.parameters() if p.grad is not None]
    return torch.nn.utils.get_total_norm(grads) if grads else None


def _number(value) -> float:
    return float(value.detach().float()) if isinstance(value, torch.Tensor) else float(value)


def _format(value: float | None, digits: int = 4) -> str:
    return "n/a" if value is None else f"{value:.{digits}f}" if math.isfinite(value) else str(value)


class CollapseGuard:
    """The per-run state of the guard (see the module docstring for the rules).

    Per optimizer step call `observe(step, loss, uniform, grad_norm)` before `optimizer.step()` (raises at once on a
    non-finite value); at each check call `check(step, image_cosine, text_cosine)` (returns the values to log,
    raises after `patience` steps of collapse); after each checkpoint save call `checkpoint_saved(path)`, and pass
    `protect` to `save_checkpoint`.

    Args:
        patience: steps the condition must hold before the run stops; 0: only the non-finite stop.
        cosine: spread above which features count as collapsed, in (0, 1].
        grace_steps: checks before this step never start an episode (the warm-up).
        loss_name: how the message names the watched loss (e.g. "ITC loss").
        candidates_name: what B counts in the message (e.g. "contrastive candidates", "classes").
        warn: prints the warning (default `print`; the trainers pass their main-process printer).
    """

    def __init__(self, patience: int = DEFAULT_PATIENCE, cosine: float = DEFAULT_COSINE,
                 loss_tolerance: float = LOSS_TOLERANCE, grace_steps: int = 0, loss_name: str = "loss",
                 candidates_name: str = "contrastive candidates", warn: Callable[[str], None] | None = None):
        check_settings(patience, cosine)
        self.patience, self.cosine, self.loss_tolerance = patience, cosine, loss_tolerance
        self.grace_steps, self.loss_name, self.candidates_name = grace_steps, loss_name, candidates_name
        self.warn = warn or print
        self.episode_start: int | None = None  # first check of the current suspect episode
        self.healthy = True  # the latest check met neither condition (True before the first check)
        self.best_checkpoint: Path | None = None
        self.latest_checkpoint: Path | None = None
        self.image_cosine: float | None = None
        self.text_cosine: float | None = None
        self.last_loss: float | None = None
        self.uniform: float | None = None
        self._ratios: list[float] = []  # loss / ln B of the steps since the last check

    @property
    def watching(self) -> bool:
        """Whether checks (and the probe forward passes they need) are wanted: patience > 0."""
        return self.patience > 0

    @property
    def suspect(self) -> bool:
        return self.episode_start is not None

    @property
    def protect(self) -> Path | None:
        """The checkpoint pruning must keep: the best one, while the latest check found the run collapsing."""
        return None if self.healthy else self.best_checkpoint

    def state_dict(self) -> dict:
        """What a checkpoint keeps of the guard (JSON): the current suspect episode, the losses since the last check,
        the best checkpoint and the last values its messages show."""
        return {"episode_start": self.episode_start, "healthy": self.healthy, "ratios": list(self._ratios),
                "best_checkpoint": None if self.best_checkpoint is None else str(self.best_checkpoint),
                "last_loss": self.last_loss, "uniform": self.uniform, "image_cosine": self.image_cosine,
                "text_cosine": self.text_cosine}

    def resume(self, checkpoint: str | Path, saved: dict) -> None:
        """Continue from `checkpoint`, whose trainer state holds `saved` (`state_dict`; empty for a checkpoint written
        before the guard's state was kept: then only the checkpoint is known)."""
        if saved:
            self.episode_start, self.healthy, self._ratios = saved["episode_start"], saved["healthy"], saved["ratios"]
            self.best_checkpoint = None if saved["best_checkpoint"] is None else Path(saved["best_checkpoint"])
            self.last_loss, self.uniform = saved["last_loss"], saved["uniform"]
            self.image_cosine, self.text_cosine = saved["image_cosine"], saved["text_cosine"]
        self.checkpoint_saved(checkpoint)

    def checkpoint_saved(self, path: str | Path) -> None:
        """A checkpoint was written (or resumed from): the best one so far if the latest check found the run
        healthy."""
        self.latest_checkpoint = Path(path)
        if self.healthy:
            self.best_checkpoint = Path(path)

    def observe(self, step: int, loss, uniform: float | None = None, grad_norm=None,
                other_losses: Mapping[str, object] | None = None) -> None:
        """Record one optimizer step's loss (a tensor or number, the value the trainer logs) and its uniform value
        ln B; raise `TrainingCollapsedError` at once if the loss, the gradient norm or one of `other_losses` (e.g. the
        summed multi-task loss, by name) is not finite."""
        value = _number(loss)
        self.last_loss, self.uniform = value, uniform if uniform is not None else self.uniform
        norm = None if grad_norm is None else _number(grad_norm)
        if not math.isfinite(value):
            self._stop(step, f"the {self.loss_name} is not finite")
        if norm is not None and not math.isfinite(norm):
            self._stop(step, f"the gradient norm is {norm}")
        for name, other in (other_losses or {}).items():
            if other is not None and not math.isfinite(_number(other)):
                self._stop(step, f"the {name} is {_number(other)}")
        if uniform:
            self._ratios.append(value / uniform)

    def observe_unclipped(self, step: int, loss, candidates: int, model: torch.nn.Module, mixed_precision: str,
                          other_losses: Mapping[str, object] | None = None) -> None:
        """`observe` for a trainer that does not clip: the uniform value ln(candidates) and the total gradient norm
        (not under fp16, whose loss scaler skips non-finite steps itself). Call after backward, before the step."""
        norm = None if mixed_precision == "fp16" else gradient_norm(model)
        self.observe(step, loss, uniform_loss(candidates), norm, other_losses)

    @staticmethod
    def check_due(step: int, end_of_epoch: bool = False) -> bool:
        """Whether `step` gets a `check`: every `CHECK_EVERY` steps, and at the end of an epoch that did not just
        have one."""
        return (step % CHECK_EVERY != 0) if end_of_epoch else (step % CHECK_EVERY == 0)

    def check(self, step: int, image_cosine: float | None = None, text_cosine: float | None = None) -> dict:
        """Judge the steps since the last check; returns what to log (`loss_over_uniform`, `image_cosine`,
        `text_cosine`, those measured) and raises `TrainingCollapsedError` once the condition has held for
        `patience` steps."""
        ratio = sum(self._ratios) / len(self._ratios) if self._ratios else None
        self._ratios = []
        self.image_cosine, self.text_cosine = image_cosine, text_cosine
        logs = {name: value for name, value in (("loss_over_uniform", ratio), ("image_cosine", image_cosine),
                                                ("text_cosine", text_cosine)) if value is not None}
        if not self.watching:
            return logs
        if any(value is not None and not math.isfinite(value) for value in (image_cosine, text_cosine)):
            self._stop(step, "the features are not finite", ratio)
        reasons = []
        if ratio is not None and abs(ratio - 1.0) < self.loss_tolerance:
            reasons.append(f"the {self.loss_name} sits at its uniform value ln B")
        for name, value in (("image", image_cosine), ("text", text_cosine)):
            if value is not None and value > self.cosine:
                reasons.append(f"the {name} features collapsed (mean pairwise cosine {value:.5f} > {self.cosine})")
        self.healthy = not reasons
        if not reasons or step < self.grace_steps:
            if self.suspect:
                self.warn(f"collapse guard: recovered at step {step} (suspect since step {self.episode_start})")
            self.episode_start = None
            return logs
        if not self.suspect:
            self.episode_start = step
            self.warn(f"warning: collapse guard: at step {step} {' and '.join(reasons)} ({self._values(ratio)}); "
                      f"the run stops if this lasts {self.patience} steps. {REMEDIES[0].upper()}{REMEDIES[1:]}")
        elif step - self.episode_start >= self.patience:
            self._stop(step, f"{' and '.join(reasons)} for {step - self.episode_start} steps", ratio)
        return logs

    def _values(self, ratio: float | None = None) -> str:
        loss = _format(self.last_loss if ratio is None or self.uniform is None else ratio * self.uniform)
        parts = [f"{self.loss_name} = {loss}"]
        if self.uniform is not None:
            parts[0] += f" vs ln B = {self.uniform:.4f}"
        parts.append(f"feature cosine {_format(self.image_cosine, 5)}")
        return ", ".join(parts)

    def _stop(self, step: int, reason: str, ratio: float | None = None) -> None:
        if self.best_checkpoint is not None:
            best = str(self.best_checkpoint)
        elif self.latest_checkpoint is not None:
            best = f"none before the collapse began (latest: {self.latest_checkpoint})"
        else:
            best = "none (no checkpoint was saved before the collapse)"
        extra = f"; B = {round(math.exp(self.uniform))} {self.candidates_name}" if self.uniform else ""
        message = (f"training collapsed at step {step} ({self._values(ratio)}{extra}; {reason}); best checkpoint: "
                   f"{best}; {REMEDIES}")
        raise TrainingCollapsedError(message, step, self.best_checkpoint, reason)


def check_settings(patience, cosine) -> None:
    """The config rules of `collapse_patience` (a whole number >= 0) and `collapse_cosine` (in (0, 1])."""
    if not isinstance(patience, int) or isinstance(patience, bool) or patience < 0:
        raise ValueError(f"collapse_patience must be a whole number >= 0 (0: off), got {patience!r}")
    if isinstance(cosine, bool) or not isinstance(cosine, (int, float)) or not 0 < cosine <= 1:
        raise ValueError(f"collapse_cosine must be in (0, 1], got {cosine!r}")


__all__ = [
    "CHECK_EVERY", "DEFAULT_COSINE", "DEFAULT_PATIENCE", "LOSS_TOLERANCE", "PROBE_SIZE", "REMEDIES", "CollapseGuard",
    "TrainingCollapsedError", "check_settings", "feature_spread", "gradient_norm", "probe_indices", "probe_spread",
    "uniform_loss",
]
