"""`evaluate_model`: `run_evaluation` on a training `DatasetDict` (split choice, class names from its labels)."""

from __future__ import annotations

from pathlib import Path

import datasets
import torch

from dataset_scripts.captions.class_names import label_class_words

from .run import run_evaluation

EVAL_SPLIT = "test"


def evaluate_model(
    model: torch.nn.Module,
    processor,
    dataset: datasets.DatasetDict,
    train_split: str,
    eval_split: str,
    tasks: list[str],
    out_dir: str | Path,
    batch_size: int = 64,
    class_words: dict[str, str] | None = None,
    collapse_cosine: float | None = None,
) -> dict[str, float]:
    """Evaluate on `dataset[eval_split]` (linear probe fitted on `dataset[train_split]`).

    Class names come from a ClassLabel `label` column, spelled as the training captions spell them
    (`dataset_scripts.captions.class_names.label_class_words`, with the user's `class_words` mapping); without
    such a column only retrieval runs (reported, not silent). `collapse_cosine`: the image-feature spread above which
    the model is flagged as collapsed (`run_evaluation`; None: its default).
    """
    if eval_split not in dataset:
        raise ValueError(f"no evaluation split {eval_split!r} (splits: {list(dataset)})")
    splits = {EVAL_SPLIT: dataset[eval_split]}
    if train_split in dataset:
        splits["train"] = dataset[train_split]
    class_names = label_class_words(dataset[eval_split], class_words)
    tasks = list(tasks)
    if class_names is None and set(tasks) - {"retrieval"}:
        print(f"no ClassLabel 'label' column: skipping {sorted(set(tasks) - {'retrieval'})}, running retrieval only")
        tasks = [t for t in tasks if t == "retrieval"]
    if "linear_probe" in tasks and "train" not in splits:
        print(f"no {train_split!r} split to fit the linear probe on: skipping linear_probe")
        tasks.remove("linear_probe")
    extra = {} if collapse_cosine is None else {"collapse_cosine": collapse_cosine}
    return run_evaluation(model, processor, datasets.DatasetDict(splits), class_names, out_dir, tasks=tuple(tasks),
                          batch_size=batch_size, **extra)
