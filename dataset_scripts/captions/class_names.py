"""Class-name normalisation (class_names.yaml): dataset class names -> caption words, kept as data."""

from __future__ import annotations

import dataclasses
import re
from pathlib import Path

import yaml

CLASS_NAMES_FILE = Path(__file__).with_name("class_names.yaml")
_IGNORED = re.compile(r"[\s_\-]+")


@dataclasses.dataclass(frozen=True)
class ClassName:
    singular: str
    plural: str

    def counted(self, count: int, article: bool = False, numeral: bool = False) -> str:
        """'2 ships'; for one object 'ship', '1 ship' with ``numeral``, 'a ship' / 'an A220 aircraft' with
        ``article``."""
        if count != 1:
            return f"{count} {self.plural}"
        if numeral:
            return f"1 {self.singular}"
        if not article:
            return self.singular
        return ("an " if self.singular[0].lower() in "aeiou" else "a ") + self.singular


def normalise_key(name: str) -> str:
    return _IGNORED.sub("", name).lower()


def _regular_plural(name: str) -> str:
    head, _, last = name.rpartition(" ")
    if re.search(r"(s|x|z|ch|sh)$", last):
        last += "es"
    elif re.search(r"[^aeiou]y$", last):
        last = last[:-1] + "ies"
    else:
        last += "s"
    return f"{head} {last}" if head else last


class ClassNameTable:
    """Lookup of class names in one section of a class-names file, falling back to ``common``."""

    def __init__(self, section: str = "common", path: str | Path = CLASS_NAMES_FILE, extra: dict | None = None):
        """``extra`` maps more class names to caption words (same value forms as the file); it wins over the file."""
        data = yaml.safe_load(Path(path).read_text(encoding="utf-8"))
        if section not in data:
            raise ValueError(f"{path}: no section {section!r} (sections: {sorted(data)})")
        self.section = section
        self._names: dict[str, ClassName] = {}
        for source, entries in (("common", data.get("common", {})), (section, data[section]), ("extra", extra or {})):
            seen = set()
            for raw, value in entries.items():
                key = normalise_key(str(raw))
                if key in seen:
                    raise ValueError(f"{path}: section {source!r} lists {raw!r} twice (keys ignore case, '_', '-')")
                seen.add(key)
                name = value if isinstance(value, str) else value["name"]
                plural = _regular_plural(name) if isinstance(value, str) else value.get("plural", _regular_plural(name))
                self._names[key] = ClassName(name, plural)

    def __contains__(self, raw: str) -> bool:
        return normalise_key(raw) in self._names

    def __getitem__(self, raw: str) -> ClassName:
        """The caption words for a dataset class name; KeyError (with a hint) for unknown classes."""
        try:
            return self._names[normalise_key(raw)]
        except KeyError:
            raise KeyError(f"unknown class {raw!r}: add it to section {self.section!r} of class_names.yaml "
                           "or pass extra class names") from None
