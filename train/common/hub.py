"""Model cards with the run's config and eval results (model-index), and Hub uploads of finished runs."""

from __future__ import annotations

import json
from pathlib import Path

import yaml
from huggingface_hub import EvalResult

from model_cards import sarclip_model_card
from modeling_sarclip.hub_sarclip import push_folder

CARD_FILE = "README.md"
EVAL_FILE = "eval_results.json"
CONFIG_FILE = "train_config.yaml"

# metric-name prefix -> (Hub task type, task name)
TASKS = {
    "retrieval": ("image-to-text", "Image-text retrieval"),
    "zero_shot": ("zero-shot-image-classification", "Zero-shot (prompt) classification"),
    "linear_probe": ("image-classification", "Linear probe"),
}
# bookkeeping entries of eval_results.json that are not results (counts, chosen hyper-parameters, per-class lists)
NOT_RESULTS = ("num_", "without", "weight_decay", "class_accuracy/")


def eval_results_for_card(metrics: dict[str, float], dataset_name: str) -> list[EvalResult]:
    """Flat metric names (`retrieval/mean_recall`, `zero_shot_top1`, ...) -> model-index entries, one per metric.

    The task is read from the name's prefix; metrics of other tasks are listed under "Evaluation". Bookkeeping
    entries (`NOT_RESULTS`) stay in eval_results.json only.
    """
    results = []
    for name, value in sorted(metrics.items()):
        if not isinstance(value, (int, float)) or any(part in name for part in NOT_RESULTS):
            continue
        task_type, task_name = next(
            (task for prefix, task in TASKS.items() if name.startswith(prefix)), ("feature-extraction", "Evaluation")
        )
        results.append(
            EvalResult(
                task_type=task_type, task_name=task_name, dataset_type=dataset_name, dataset_name=dataset_name,
                metric_type=name, metric_name=name, metric_value=float(value),
            )
        )
    return results


def write_model_card(
    model_dir: str | Path, train_config: dict | None, metrics: dict[str, float], dataset_name: str = "unknown"
) -> Path:
    """Render `model_dir/README.md` from the model_cards template: architecture, training config, eval results."""
    model_dir = Path(model_dir)
    config = json.loads((model_dir / "config.json").read_text()) if (model_dir / "config.json").is_file() else {}
    vision = config.get("vision_config", {})
    if isinstance(vision.get("layers"), list):
        architecture = f"ModifiedResNet {vision['layers']}, width {vision.get('width')}"
    elif vision:
        layers, width, patch = vision.get("layers"), vision.get("width"), vision.get("patch_size")
        architecture = f"ViT {layers} layers, width {width}, patch {patch}"
    else:
        architecture = "LoRA adapters on a SARCLIP base"
    training = ""
    if train_config:
        keys = ("model", "init_from", "data", "num_epochs", "batch_size", "gradient_accumulation_steps",
                "learning_rate", "weight_decay", "mixed_precision", "lora", "seed")
        training = "; ".join(f"{k}={train_config.get(k)}" for k in keys if train_config.get(k) not in (None, False))
    results = eval_results_for_card(metrics, Path(dataset_name).name or dataset_name) if metrics else None
    card = sarclip_model_card(architecture=architecture, source="trained with `python -m train`", training=training,
                              eval_results=results)
    path = model_dir / CARD_FILE
    card.save(path)
    return path


def refresh_model_card(model_dir: str | Path) -> Path:
    """Rebuild the card of a finished run from its saved `train_config.yaml` and `eval_results.json`."""
    model_dir = Path(model_dir)
    config = yaml.safe_load((model_dir / CONFIG_FILE).read_text()) if (model_dir / CONFIG_FILE).is_file() else None
    metrics = json.loads((model_dir / EVAL_FILE).read_text()) if (model_dir / EVAL_FILE).is_file() else {}
    return write_model_card(model_dir, config, metrics, dataset_name=(config or {}).get("data", "unknown"))


def push_model_dir(model_dir: str | Path, repo_id: str, private: bool = False) -> str:
    """Upload a model folder (weights or adapters, processor, remote code, config, eval results) to the Hub, with a
    model card rebuilt from the folder's `train_config.yaml` and `eval_results.json`."""
    model_dir = Path(model_dir)
    if not (model_dir / "config.json").is_file() and not (model_dir / "adapter_config.json").is_file():
        raise FileNotFoundError(f"{model_dir}: not a model folder (no config.json or adapter_config.json)")
    refresh_model_card(model_dir)
    push_folder(model_dir, repo_id, private=private, commit_message="Upload SARCLIP run")
    return repo_id
