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


def load_class_words(path: str | Path | None) -> dict[str, str]:
    """A user's YAML/JSON mapping of class (folder) names to caption words, e.g. `{BTR_60: "BTR-60 carrier"}`."""
    if path is None:
        return {}
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no such class-words file (a YAML or JSON mapping of class name to words)")
    mapping = yaml.safe_load(path.read_text(encoding="utf-8"))  # JSON is YAML
    if not isinstance(mapping, dict) or not all(isinstance(v, str) and v.strip() for v in mapping.values()):
        raise ValueError(f"{path}: class words must be a mapping of class name to non-empty words")
    return {str(key): value.strip() for key, value in mapping.items()}


def class_words(label_names: list[str], mapping: dict[str, str] | None = None, section: str = "common") -> list[str]:
    """The caption words of each class, for training captions and zero-shot prompts alike: the user's `mapping`
    first, then class_names.yaml (`section`, falling back to `common`), else the name with `_` as spaces.

    A `mapping` key that names no class is an error (a typo would otherwise be ignored silently).
    """
    mapping = mapping or {}
    if unknown := sorted(set(mapping) - set(label_names)):
        raise ValueError(f"class words given for unknown classes {unknown}; the classes are {label_names}")
    try:
        table = ClassNameTable(section)
    except ValueError:
        table = ClassNameTable("common")
    return [mapping[name] if name in mapping else table[name].singular if name in table else name.replace("_", " ")
            for name in label_names]


def label_class_words(split, words: dict[str, str] | None = None) -> list[str] | None:
    """Caption words of the split's ClassLabel `label` names (None without one): `class_words` with the section of
    class_names.yaml named by the split's `source` column (builders write it), else `common`."""
    import datasets

    label = split.features.get("label")
    if not isinstance(label, datasets.ClassLabel):
        return None
    section = split[0]["source"] if "source" in split.column_names and len(split) else "common"
    return class_words(label.names, words, section)
