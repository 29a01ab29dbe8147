"""Optional LLM fluency check (SARCLIP-1M verifies caption fluency and grammar with an LLM). Off by default."""

from __future__ import annotations

import importlib
from typing import Callable

from ..errors import DatasetBuildError

FluencyCheck = Callable[[list[str]], list[str]]


def apply_fluency_check(captions: list[str], check: FluencyCheck | None, where: str) -> list[str]:
    """Return ``check(captions)`` (or ``captions`` when ``check`` is None), validated: one non-empty string per
    input caption. ``where`` (the image file) is named in the error otherwise."""
    if check is None:
        return captions
    checked = check(list(captions))
    if not isinstance(checked, list) or len(checked) != len(captions):
        raise DatasetBuildError(where, f"fluency check returned {checked!r} for {len(captions)} captions")
    if not all(isinstance(c, str) and c.strip() for c in checked):
        raise DatasetBuildError(where, f"fluency check returned an empty caption: {checked!r}")
    return checked


def load_fluency_check(spec: str) -> FluencyCheck:
    """Import ``"package.module:function"`` (the CLI's ``--fluency-check``)."""
    module, sep, name = spec.partition(":")
    if not sep:
        raise ValueError(f"--fluency-check must look like 'package.module:function', got {spec!r}")
    return getattr(importlib.import_module(module), name)
