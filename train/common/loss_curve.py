"""The training loss per optimizer step as a PNG (beside TensorBoard's curves, for a folder read without it)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np

from sar_utils.atomic import atomic_file


def save_loss_curve(losses: Sequence[float], path: str | Path, uniform: float | None = None,
                    title: str = "training loss") -> None:
    """Per-step loss, its running mean over ~2 % of the run, and the uniform value (ln B, the loss of a model that
    scores every candidate alike) as a dashed line: a run that learned leaves it."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    losses = np.asarray(losses, dtype=float)
    steps = np.arange(1, len(losses) + 1)
    figure, axes = plt.subplots(figsize=(7, 4))
    axes.plot(steps, losses, color="tab:blue", alpha=0.35, linewidth=0.8, label="loss")
    window = max(1, len(losses) // 50)
    if window > 1:
        smooth = np.convolve(losses, np.ones(window) / window, mode="valid")
        axes.plot(steps[window - 1:], smooth, color="tab:blue", label=f"mean of {window} steps")
    if uniform is not None:
        axes.axhline(uniform, color="tab:red", linestyle="--", label=f"uniform value {uniform:.3f}")
    axes.set_xlabel("optimizer step")
    axes.set_ylabel("loss")
    axes.set_title(title)
    axes.legend()
    figure.tight_layout()
    with atomic_file(path) as tmp:
        figure.savefig(tmp, dpi=100)
    plt.close(figure)
