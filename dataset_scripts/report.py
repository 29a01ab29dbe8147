"""BuildReport: what a build wrote, skipped, repaired, flagged and ignored (printed by the CLI, written to the card
without local paths)."""

from __future__ import annotations

import dataclasses
import os
import re
from collections import Counter
from pathlib import Path

from .errors import DatasetBuildError


@dataclasses.dataclass
class BuildReport:
    """Counts and reasons for one dataset build. Nothing is dropped without an entry here."""

    source: str
    strict: bool = False  # raise on the first skipped item instead of recording it
    counts: Counter = dataclasses.field(default_factory=Counter)  # examples per split
    table: Counter = dataclasses.field(default_factory=Counter)  # (dataset, split, "images" | "captions") -> count
    skipped: list[tuple[str, str]] = dataclasses.field(default_factory=list)
    repaired: list[tuple[str, str]] = dataclasses.field(default_factory=list)
    flagged: list[tuple[str, str]] = dataclasses.field(default_factory=list)
    ignored: list[tuple[str, str]] = dataclasses.field(default_factory=list)
    limited: dict[str, tuple[int, int]] = dataclasses.field(default_factory=dict)
    dropped_splits: list[str] = dataclasses.field(default_factory=list)

    def add_example(self, split: str, dataset: str, num_captions: int) -> None:
        self.counts[split] += 1
        self.table[dataset, split, "images"] += 1
        self.table[dataset, split, "captions"] += num_captions

    def skip(self, path: str, reason: str) -> None:
        """An input item that could not be used: recorded (the build goes on), or raised when ``strict``."""
        if self.strict:
            raise DatasetBuildError(path, reason)
        self.skipped.append((str(path), reason))

    def repair(self, path: str, what: str) -> None:
        """An input file that was malformed and read after a documented repair."""
        self.repaired.append((str(path), what))

    def flag(self, path: str, what: str) -> None:
        """An input item used as it is, with a caveat (e.g. NaN values kept, a checksum that could not be verified)."""
        self.flagged.append((str(path), what))

    def ignore(self, path: str, reason: str) -> None:
        """A file in the source folder that is not an input item (e.g. a README)."""
        self.ignored.append((str(path), reason))

    def limit(self, split: str, kept: int, available: int) -> None:
        """``max_items`` kept ``kept`` of ``available`` items of ``split``."""
        self.limited[split] = (kept, available)

    def drop_split(self, split: str) -> None:
        """``split`` had items but all were skipped: it is left out of the output."""
        self.dropped_splits.append(split)

    def merge(self, other: BuildReport) -> None:
        """Add another report's entries (used by ``sarclip_mix``), prefixing them with its source."""
        self.counts.update(other.counts)
        self.table.update(other.table)
        pairs = ((self.skipped, other.skipped), (self.repaired, other.repaired), (self.flagged, other.flagged),
                 (self.ignored, other.ignored))
        for mine, theirs in pairs:
            mine.extend((path, f"[{other.source}] {text}") for path, text in theirs)
        for split, (kept, available) in other.limited.items():
            self.limited[f"{other.source}/{split}"] = (kept, available)

    @property
    def sections(self) -> tuple[tuple[str, list[tuple[str, str]]], ...]:
        return (("skipped", self.skipped), ("repaired", self.repaired), ("flagged", self.flagged),
                ("ignored", self.ignored))

    @property
    def total(self) -> int:
        return sum(self.counts.values())

    def summary(self) -> str:
        """Plain-text report for the terminal."""
        lines = [f"Build report for '{self.source}': {self.total} examples "
                 + "(" + ", ".join(f"{split}: {n}" for split, n in sorted(self.counts.items())) + ")"]
        for split, (kept, available) in sorted(self.limited.items()):
            lines.append(f"  max_items: kept {kept} of {available} items of {split}")
        for split in self.dropped_splits:
            lines.append(f"  split {split} left out: all its items were skipped")
        for title, entries in self.sections:
            lines.append(f"  {title}: {len(entries)}")
            lines.extend(f"    {path}: {text}" for path, text in entries)
        return "\n".join(lines)

    def to_markdown(self, root: str | Path | None = None) -> str:
        """Markdown section for the dataset card; paths are shown relative to the source folder ``root`` and no
        absolute local path is written (`without_local_paths`)."""
        lines = ["| dataset | split | images | captions |", "|---|---|---|---|"]
        lines += [f"| {dataset} | {split} | {n} | {self.table[dataset, split, 'captions']} |"
                  for (dataset, split, kind), n in sorted(self.table.items()) if kind == "images"]
        lines += ["", f"- skipped items: {len(self.skipped)}", f"- repaired files: {len(self.repaired)}",
                  f"- flagged items: {len(self.flagged)}", f"- ignored files: {len(self.ignored)}"]
        lines += [f"- `max_items` kept {kept} of {available} items of `{split}`"
                  for split, (kept, available) in sorted(self.limited.items())]
        lines += [f"- split `{split}` left out: all its items were skipped" for split in self.dropped_splits]
        for title, entries in self.sections:
            if entries:
                lines += ["", f"{title.capitalize()}:", ""] + [f"- `{path}`: {text}" for path, text in entries]
        return without_local_paths("\n".join(lines), root)


ABSOLUTE_PATH = re.compile(r"(?<![\w.~/-])/(?:[^\s/`'\"(),:]+/)+([^\s/`'\"(),:]+)")


def without_local_paths(text: str, root: str | Path | None = None) -> str:
    """``text`` with paths under ``root`` made relative to it and any other absolute path cut to ``…/<name>``."""
    for prefix in {os.path.abspath(root), os.path.normpath(root)} if root is not None else ():
        text = re.sub(r"(?<![\w./-])" + re.escape(prefix.rstrip(os.sep) + os.sep), "", text)
    return ABSOLUTE_PATH.sub(r"…/\1", text)
