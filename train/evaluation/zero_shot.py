"""Zero-shot / prompt classification with SAR prompt templates and prompt ensembles.

Each class is described by every template of a set ("a SAR image of a {class}."); the class embedding is the mean of
the normalised prompt embeddings, renormalised (CLIP / open_clip prompt ensembling). An image is assigned the class
with the highest cosine similarity. Reports top-1/top-3 and per-class accuracy (percent) and saves the top-1
confusion matrix as a PNG. The same class embeddings, used as text queries that rank the test images (archive
search with class prompts), give `class_search/mAP` and `class_search/P@10` (`retrieval.class_search_precision`).
"""

from __future__ import annotations

import functools
import string
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
import yaml

from .encode import encode_texts
from .metrics import load_metric
from .retrieval import class_search_precision

TEMPLATES_FILE = Path(__file__).with_name("templates.yaml")
DEFAULT_TEMPLATE_SET = "sarclip_1m"
TOP_K = (1, 3)


@functools.cache
def template_sets() -> dict[str, tuple[str, ...]]:
    """All template sets: those of templates.yaml plus "sarclip_1m" (the SARCLIP-1M classification captions)."""
    from dataset_scripts.captions import load_templates

    data = yaml.safe_load(TEMPLATES_FILE.read_text(encoding="utf-8"))
    sets = {name: tuple(templates) for name, templates in data.items()}
    sets[DEFAULT_TEMPLATE_SET] = load_templates().classification
    for name, templates in sets.items():
        if not templates:
            raise ValueError(f"{TEMPLATES_FILE}: template set {name!r} is empty")
        for template in templates:
            fields = {field for _, field, _, _ in string.Formatter().parse(template) if field is not None}
            if fields != {"class"}:
                raise ValueError(f"template set {name!r}: template {template!r} must use exactly one {{class}} field")
    return sets


def load_template_set(name: str) -> tuple[str, ...]:
    sets = template_sets()
    if name not in sets:
        raise ValueError(f"unknown template set {name!r} (available: {sorted(sets)}; edit {TEMPLATES_FILE} to add one)")
    return sets[name]


def class_embeddings(
    model: torch.nn.Module,
    processor,
    class_names: Sequence[str],
    templates: Sequence[str],
    batch_size: int = 64,
    autocast_dtype: torch.dtype | None = None,
) -> torch.Tensor:
    """(C, D) prompt-ensemble embeddings: per class, mean of the normalised prompt embeddings, renormalised.

    `class_names` are put into the templates verbatim, so pass caption words ("storage tank", "T-72 tank"), e.g.
    `dataset_scripts.captions.ClassNameTable(section)[name].singular`, not raw label ids.
    """
    if not class_names:
        raise ValueError("no class names given")
    if len(set(class_names)) != len(class_names):
        raise ValueError(f"class names must be distinct, got {list(class_names)}")
    prompts = [template.format_map({"class": name}) for name in class_names for template in templates]
    features = encode_texts(model, processor, prompts, batch_size, autocast_dtype)
    return F.normalize(features.view(len(class_names), len(templates), -1).mean(dim=1), dim=-1)


def classify(
    image_features: torch.Tensor, class_features: torch.Tensor, labels: Sequence[int], top_k: Sequence[int] = TOP_K
) -> dict:
    """`sar_classification` metric of the cosine-similarity ranking of the classes for each image."""
    num_classes = class_features.shape[0]
    scores = image_features @ class_features.T
    ranked = torch.sort(scores, dim=1, descending=True, stable=True).indices[:, : min(max(top_k), num_classes)]
    return load_metric("sar_classification").compute(
        predictions=ranked.tolist(), references=list(labels), num_classes=num_classes, top_k=top_k
    )


def flat_classification_metrics(results: dict, class_names: Sequence[str], prefix: str) -> dict[str, float]:
    """`sar_classification` output -> flat float metrics; classes without test examples are left out (and counted)."""
    flat = {f"{prefix}/{key}": value for key, value in results.items() if key.startswith("top")}
    flat[f"{prefix}/mean_class_accuracy"] = results["mean_class_accuracy"]
    per_class = results["per_class_accuracy"]
    flat.update({f"{prefix}/class_accuracy/{n}": acc for n, acc in zip(class_names, per_class) if acc is not None})
    flat[f"{prefix}/classes_without_examples"] = float(sum(acc is None for acc in per_class))
    return flat


def save_confusion_matrix(confusion: Sequence[Sequence[int]], class_names: Sequence[str], path: str | Path, title: str):
    """Confusion matrix (rows: true class, columns: predicted class) as a PNG with the counts written in the cells."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    confusion = np.asarray(confusion)
    size = max(4.0, 0.5 * len(class_names) + 2)
    figure, axes = plt.subplots(figsize=(size + 1, size))
    image = axes.imshow(confusion, cmap="Blues")
    figure.colorbar(image, ax=axes, fraction=0.046)
    ticks = range(len(class_names))
    axes.set_xticks(ticks, class_names, rotation=45, ha="right")
    axes.set_yticks(ticks, class_names)
    axes.set_xlabel("predicted class")
    axes.set_ylabel("true class")
    axes.set_title(title)
    threshold = confusion.max() / 2 if confusion.size else 0
    for (row, col), count in np.ndenumerate(confusion):
        axes.text(col, row, str(count), ha="center", va="center", color="white" if count > threshold else "black")
    figure.tight_layout()
    figure.savefig(path, dpi=100, bbox_inches="tight")
    plt.close(figure)


def evaluate_zero_shot(
    model: torch.nn.Module,
    processor,
    image_features: torch.Tensor,
    labels: Sequence[int],
    class_names: Sequence[str],
    out_dir: str | Path,
    template_set: str = DEFAULT_TEMPLATE_SET,
    batch_size: int = 64,
    autocast_dtype: torch.dtype | None = None,
) -> dict[str, float]:
    """Zero-shot metrics under "zero_shot/..." and the confusion matrix in out_dir/zero_shot_confusion_matrix.png."""
    templates = load_template_set(template_set)
    class_features = class_embeddings(model, processor, class_names, templates, batch_size, autocast_dtype)
    results = classify(image_features, class_features, labels)
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    save_confusion_matrix(
        results["confusion_matrix"],
        class_names,
        out_dir / "zero_shot_confusion_matrix.png",
        f"zero-shot ({template_set}, {len(templates)} prompts): top-1 {results['top1']:.2f}%",
    )
    flat = flat_classification_metrics(results, class_names, "zero_shot")
    flat["zero_shot/num_prompts_per_class"] = float(len(templates))
    # the same class prompts as search queries over the test images (archive search quality)
    search = class_search_precision(image_features @ class_features.T, labels)
    flat.update({f"class_search/{name}": value for name, value in search.items()})
    return flat


__all__ = [
    "DEFAULT_TEMPLATE_SET", "class_embeddings", "classify", "evaluate_zero_shot", "flat_classification_metrics",
    "load_template_set", "save_confusion_matrix", "template_sets",
]
