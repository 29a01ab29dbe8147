"""WiSE-FT (Wortsman et al., 2022; used by the SARCLIP paper for its downstream runs): weight-space ensembles
theta(alpha) = (1 - alpha) * theta_zero_shot + alpha * theta_fine_tuned, evaluated for a list of alphas.

Floating-point tensors are interpolated with `torch.lerp`, which returns the zero-shot tensor exactly at alpha = 0 and
the fine-tuned one exactly at alpha = 1. Integer buffers (BatchNorm's `num_batches_tracked`) cannot be interpolated:
they are taken from the endpoint nearer to alpha (choice; they only matter for BatchNorm with momentum=None).
"""

from __future__ import annotations

import copy
import json
from collections.abc import Sequence
from pathlib import Path

import torch

DEFAULT_ALPHAS = (0.0, 0.25, 0.5, 0.75, 1.0)
# config entries that describe where a checkpoint came from, not its architecture
IGNORED_CONFIG_KEYS = {"_name_or_path", "architectures", "auto_map", "dtype", "torch_dtype", "transformers_version"}


def _architecture(config_dict: dict) -> dict:
    return {
        key: _architecture(value) if isinstance(value, dict) else value
        for key, value in config_dict.items()
        if key not in IGNORED_CONFIG_KEYS
    }


def _differences(a: dict, b: dict, prefix: str = "") -> list[str]:
    keys = sorted(set(a) | set(b))
    found = []
    for key in keys:
        left, right = a.get(key, "<missing>"), b.get(key, "<missing>")
        if isinstance(left, dict) and isinstance(right, dict):
            found += _differences(left, right, f"{prefix}{key}.")
        elif left != right:
            found.append(f"{prefix}{key}: {left!r} vs {right!r}")
    return found


def check_same_architecture(zero_shot: torch.nn.Module, fine_tuned: torch.nn.Module) -> None:
    """Raise a ValueError naming the differing config entries / tensors when the two models cannot be mixed."""
    if type(zero_shot) is not type(fine_tuned):
        raise ValueError(f"WiSE-FT needs two models of one class, got {type(zero_shot).__name__} and "
                         f"{type(fine_tuned).__name__}")
    differences = _differences(_architecture(zero_shot.config.to_dict()), _architecture(fine_tuned.config.to_dict()))
    if differences:
        raise ValueError("WiSE-FT needs the same config for both models; zero-shot vs fine-tuned differ in: "
                         + "; ".join(differences))
    state_a, state_b = zero_shot.state_dict(), fine_tuned.state_dict()
    mismatched = sorted(set(state_a) ^ set(state_b)) + sorted(
        name for name in set(state_a) & set(state_b) if state_a[name].shape != state_b[name].shape
    )
    if mismatched:
        raise ValueError(f"WiSE-FT: the two models' weights differ in names or shapes: {mismatched[:10]}"
                         + (f" and {len(mismatched) - 10} more" if len(mismatched) > 10 else ""))


@torch.no_grad()
def interpolate_weights(zero_shot: torch.nn.Module, fine_tuned: torch.nn.Module, alpha: float) -> torch.nn.Module:
    """A new model (copy of `zero_shot`) with weights (1 - alpha) * zero_shot + alpha * fine_tuned, alpha in [0, 1]."""
    if not 0.0 <= alpha <= 1.0:
        raise ValueError(f"WiSE-FT alpha must be in [0, 1], got {alpha}")
    check_same_architecture(zero_shot, fine_tuned)
    theta_1 = fine_tuned.state_dict()
    mixed = {}
    for name, theta_0 in zero_shot.state_dict().items():
        if theta_0.is_floating_point():
            mixed[name] = torch.lerp(theta_0, theta_1[name].to(theta_0.device, theta_0.dtype), alpha)
        else:
            mixed[name] = (theta_0 if alpha < 0.5 else theta_1[name]).clone()
    model = copy.deepcopy(zero_shot)
    model.load_state_dict(mixed)
    return model


def evaluate_wise_ft(
    zero_shot: torch.nn.Module,
    fine_tuned: torch.nn.Module,
    processor,
    dataset_dict,
    class_names: Sequence[str],
    out_dir: str | Path,
    alphas: Sequence[float] = DEFAULT_ALPHAS,
    tasks: Sequence[str] = ("retrieval", "zero_shot", "linear_probe"),
    batch_size: int = 64,
) -> dict[float, dict[str, float]]:
    """`run_evaluation` of each interpolated model in out_dir/alpha_<alpha>/; returns {alpha: metrics}, which are
    also written to out_dir/wise_ft_results.json."""
    from .run import run_evaluation

    check_same_architecture(zero_shot, fine_tuned)
    out_dir = Path(out_dir)
    results = {}
    for alpha in alphas:
        model = interpolate_weights(zero_shot, fine_tuned, alpha)
        results[alpha] = run_evaluation(
            model, processor, dataset_dict, class_names, out_dir / f"alpha_{alpha:g}", tasks, batch_size
        )
        del model
    (out_dir / "wise_ft_results.json").write_text(
        json.dumps({f"{alpha:g}": metrics for alpha, metrics in results.items()}, indent=2, sort_keys=True)
    )
    return results


__all__ = ["DEFAULT_ALPHAS", "check_same_architecture", "evaluate_wise_ft", "interpolate_weights"]
