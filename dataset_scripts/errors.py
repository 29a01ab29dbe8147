"""The one error type for bad input data: it always names the file and the problem."""

from __future__ import annotations

from pathlib import Path


class DatasetBuildError(ValueError):
    """Bad input data (truncated file, checksum mismatch, box outside the image, unknown class...).

    ``str(error)`` is ``"<path>: <problem>"`` so the message always names the file.
    """

    def __init__(self, path: str | Path, problem: str):
        self.path = str(path)
        self.problem = problem
        super().__init__(f"{self.path}: {problem}")
