"""MSTAR chips stored as JPEG/PNG files in ``<root>/<split>/<class>/<chip>`` folders (the common SOC layout)."""

from __future__ import annotations

import dataclasses
from pathlib import Path

from ..errors import DatasetBuildError
from ..report import BuildReport
from .image_file import IMAGE_SUFFIXES

# Standard Operating Condition: train chips are the 17 degree depression collection, test chips 15 degrees.
# The JPEG release carries no per-chip metadata, so the depression is inferred from the split folder.
SOC_DEPRESSION_DEG = {"train": 17.0, "test": 15.0}


@dataclasses.dataclass(frozen=True)
class MstarChipFile:
    path: Path
    relative_path: str  # "<split>/<class>/<file>", unique (file stems repeat across classes)
    split: str
    class_name: str  # folder name, e.g. "BTR_60"
    depression_deg: float | None


def _is_folder(path: Path, report: BuildReport | None) -> bool:
    """True for folders; files beside the split and class folders (README, label lists) are reported as ignored."""
    if path.is_dir():
        return True
    if report is not None:
        report.ignore(str(path), "not a <split>/<class>/ folder")
    return False


def list_mstar_chip_folders(
    root: str | Path, report: BuildReport | None = None, depression_by_split: dict[str, float] = SOC_DEPRESSION_DEG
) -> list[MstarChipFile]:
    """List every chip of ``root/<split>/<class>/``, sorted; non-image files are reported as ignored."""
    root = Path(root)
    if not root.is_dir():
        raise DatasetBuildError(root, "MSTAR chip folder does not exist")
    chips = []
    for split_dir in sorted(p for p in root.iterdir() if _is_folder(p, report)):
        for class_dir in sorted(p for p in split_dir.iterdir() if _is_folder(p, report)):
            for path in sorted(class_dir.iterdir()):
                if not path.is_file() or path.suffix.lower() not in IMAGE_SUFFIXES:
                    if report is not None:
                        report.ignore(str(path), "not an image file")
                    continue
                chips.append(MstarChipFile(
                    path=path,
                    relative_path=path.relative_to(root).as_posix(),
                    split=split_dir.name,
                    class_name=class_dir.name,
                    depression_deg=depression_by_split.get(split_dir.name),
                ))
    if not chips:
        raise DatasetBuildError(root, "no chips found: expected <root>/<split>/<class>/<chip>.jpeg")
    return chips
