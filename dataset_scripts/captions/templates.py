"""Load the caption templates (templates.yaml): the data behind the SARCLIP-1M caption recipe."""

from __future__ import annotations

import dataclasses
import functools
import string
from pathlib import Path

import yaml

TEMPLATES_FILE = Path(__file__).with_name("templates.yaml")
REGIONS = ("upper_left", "upper_right", "bottom_left", "bottom_right", "center")
DIRECTIONS = ("above", "below", "left", "right")
_PLACEHOLDERS = {
    "general": {"class"}, "complex": {"class"}, "absolute": {"objects", "region"},
    "relative": {"object1", "region1", "direction", "object2", "region2"}, "empty": {"targets"},
}


@dataclasses.dataclass(frozen=True)
class CaptionTemplates:
    general: tuple[str, ...]
    complex: tuple[str, ...]
    absolute: tuple[str, ...]
    relative: tuple[str, ...]
    empty: tuple[str, ...]
    regions: dict[str, str]
    directions: dict[str, str]

    @property
    def classification(self) -> tuple[str, ...]:
        """The 10 general + complex templates, also used with object counts for detection images."""
        return self.general + self.complex


def _check(path: Path, kind: str, templates: list) -> tuple[str, ...]:
    if not templates:
        raise ValueError(f"{path}: no '{kind}' templates")
    for template in templates:
        fields = {name for _, name, _, _ in string.Formatter().parse(template) if name}
        if fields != _PLACEHOLDERS[kind]:
            raise ValueError(f"{path}: {kind} template {template!r} must use exactly {sorted(_PLACEHOLDERS[kind])}")
    return tuple(templates)


@functools.cache
def load_templates(path: Path = TEMPLATES_FILE) -> CaptionTemplates:
    """Parse and validate a templates file (placeholders per kind, all regions and directions named)."""
    data = yaml.safe_load(Path(path).read_text(encoding="utf-8"))
    cls, det = data["classification"], data["detection"]
    if set(data["regions"]) != set(REGIONS) or set(data["directions"]) != set(DIRECTIONS):
        raise ValueError(f"{path}: regions must be {REGIONS} and directions {DIRECTIONS}")
    return CaptionTemplates(
        general=_check(path, "general", cls["general"]),
        complex=_check(path, "complex", cls["complex"]),
        absolute=_check(path, "absolute", det["absolute"]),
        relative=_check(path, "relative", det["relative"]),
        empty=_check(path, "empty", det["empty"]),
        regions=dict(data["regions"]),
        directions=dict(data["directions"]),
    )
