"""Local `evaluate` metric modules (one folder each, loaded by path: no Hub access)."""

from pathlib import Path

import evaluate

METRICS_DIR = Path(__file__).resolve().parent


def load_metric(name: str) -> evaluate.EvaluationModule:
    """`evaluate.load` of the local module ``metrics/<name>/<name>.py``, kept in memory (no cache files)."""
    folder = METRICS_DIR / name
    if not (folder / f"{name}.py").is_file():
        available = sorted(p.name for p in METRICS_DIR.iterdir() if (p / f"{p.name}.py").is_file())
        raise ValueError(f"{folder}: no local metric module {name!r} (available: {available})")
    return evaluate.load(str(folder), keep_in_memory=True)


__all__ = ["METRICS_DIR", "load_metric"]
