"""Image paths named by annotation files (CSV/JSON tables, COCO, VOC) must stay inside the source folder.

An absolute path, a ``..`` in a table or a symlink in the folder could otherwise read any file on the machine
(``/etc/passwd``) into a dataset meant for publication. Reading such files needs an explicit ``allow_outside_source`` (``--allow-outside-source``).
"""

from __future__ import annotations

import os
from pathlib import Path

from ..errors import DatasetBuildError

OUTSIDE_HINT = "pass allow_outside_source=True (--allow-outside-source) to read it"
# the same rule where training and evaluation read a --data table or image folder (`dataset_scripts.loading`)
DATA_OUTSIDE_HINT = "pass --allow_outside_data (allow_outside_data: true) to read it"


def source_root(data_dir: str | Path) -> Path:
    """The folder a source's annotation files may point into: ``data_dir`` itself, or the folder of a file."""
    data_dir = Path(data_dir)
    return data_dir if data_dir.is_dir() else data_dir.parent


def check_inside(path: Path, root: Path | None, where: str | Path, what: str, hint: str = OUTSIDE_HINT,
                 folder: str = "source folder") -> Path:
    """``path`` when it lies in ``root`` or ``root`` is None; else DatasetBuildError naming ``where`` (the annotation
    file) and ``what`` (e.g. "row 3: image 'x.png'"), and ``hint`` (how to allow it). ``..`` and symlinks are
    resolved first: a link inside the folder to a file outside it is outside."""
    if root is not None:
        root_dir = os.path.realpath(root)
        if os.path.commonpath([os.path.abspath(path), os.path.abspath(root)]) != os.path.abspath(root):
            raise DatasetBuildError(where, f"{what} lies outside the {folder}; {hint}")
        target = os.path.realpath(path)
        if os.path.commonpath([target, root_dir]) != root_dir:
            raise DatasetBuildError(where, f"{what} is a symlink to {target}, outside the {folder}; {hint}")
    return path
