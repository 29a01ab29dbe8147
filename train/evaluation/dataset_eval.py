"""`evaluate_model`: `run_evaluation` on a training `DatasetDict` (split choice, class names from its labels)."""

from __future__ import annotations

from pathlib import Path

import datasets
import torch

from .run import run_evaluation

EVAL_SPLIT = "test"


def caption_class_names(split: datasets.Dataset) -> list[str] | None:
    """Prompt words of the ClassLabel `label` names, as the captions spell them (None without such a column).

    Looked up in dataset_scripts' class_names.yaml (the section named by the `source` column, else `common`);
    names it does not list are used as they are, with underscores as spaces.
    """
    from dataset_scripts.captions.class_names import ClassNameTable

    label = split.features.get("label")
    if not isinstance(label, datasets.ClassLabel):
        return None
    source = split[0]["source"] if "source" in split.column_names and len(split) else "common"
    try:
        table = ClassNameTable(source)
    except ValueError:
        table = ClassNameTable("common")
    return [table[name].singular if name in table else name.replace("_", " ") for name in label.names]


def evaluate_model(
    model: torch.nn.Module,
    processor,
    dataset: datasets.DatasetDict,
    train_split: str,
    eval_split: str,
    tasks: list[str],
    out_dir: str | Path,
    batch_size: int = 64,
) -> dict[str, float]:
    """Evaluate on `dataset[eval_split]` (linear probe fitted on `dataset[train_split]`).

    Class names come from a ClassLabel `label` column; without one only retrieval runs (reported, not silent).
    """
    if eval_split not in dataset:
        raise ValueError(f"no evaluation split {eval_split!r} (splits: {list(dataset)})")
    splits = {EVAL_SPLIT: dataset[eval_split]}
    if train_split in dataset:
        splits["train"] = dataset[train_split]
    class_names = caption_class_names(dataset[eval_split])
    tasks = list(tasks)
    if class_names is None and set(tasks) - {"retrieval"}:
        print(f"no ClassLabel 'label' column: skipping {sorted(set(tasks) - {'retrieval'})}, running retrieval only")
        tasks = [t for t in tasks if t == "retrieval"]
    if "linear_probe" in tasks and "train" not in splits:
        print(f"no {train_split!r} split to fit the linear probe on: skipping linear_probe")
        tasks.remove("linear_probe")
    return run_evaluation(model, processor, datasets.DatasetDict(splits), class_names, out_dir, tasks=tuple(tasks),
                          batch_size=batch_size)
