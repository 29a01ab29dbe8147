"""Model cards with the run's config and eval results (model-index), and Hub uploads of finished runs of both
families (SARCLIP `final/` folders, SAR-KnowLIP `model/` folders)."""

from __future__ import annotations

import json
import shutil
import tempfile
from pathlib import Path

import yaml
from huggingface_hub import EvalResult

from model_cards import sarclip_model_card
from sar_utils.hub import push_folder

KNOWLIP_MODEL_TYPE = "sar_knowlip"
CARD_FILE = "README.md"
EVAL_FILE = "eval_results.json"
CONFIG_FILE = "train_config.yaml"

# metric-name prefix -> (Hub task type, task name)
TASKS = {
    "retrieval": ("image-to-text", "Image-text retrieval"),
    "zero_shot": ("zero-shot-image-classification", "Zero-shot (prompt) classification"),
    "linear_probe": ("image-classification", "Linear probe"),
}
# bookkeeping entries of eval_results.json that are not results (counts, chosen hyper-parameters, per-class lists,
# the collapse diagnostics)
NOT_RESULTS = ("num_", "without", "weight_decay", "class_accuracy/", "feature_cosine", "collapsed")


def metric_type(name: str) -> str:
    """The Hub's standard metric type of one of our flat metric names (`retrieval/i2t_R@1` -> recall)."""
    leaf = name.rsplit("/", 1)[-1].lower()
    if "recall" in leaf or leaf.startswith(("i2t_r@", "t2i_r@")):
        return "recall"
    if "accuracy" in leaf or leaf.startswith("top"):
        return "accuracy"
    return leaf


def eval_results_for_card(metrics: dict[str, float], dataset_name: str) -> list[EvalResult]:
    """Flat metric names (`retrieval/mean_recall`, `zero_shot/top1`, ...) -> model-index entries, one per metric,
    with the Hub's standard metric types (accuracy, recall) and our name as the display name.

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
                metric_type=metric_type(name), metric_name=name, metric_value=round(float(value), 4),
            )
        )
    return results


def describe_architecture(config: dict) -> str:
    """The towers as built (not a preset name): e.g. `ViT 4 layers, width 128, patch 8, 64 px; text 3 layers,
    width 128; embedding 64`."""
    vision, text = config.get("vision_config", {}), config.get("text_config", {})
    if isinstance(vision.get("layers"), list):
        image = f"ModifiedResNet {vision['layers']}, width {vision.get('width')}"
    else:
        image = f"ViT {vision.get('layers')} layers, width {vision.get('width')}, patch {vision.get('patch_size')}"
    return (f"{image}, {vision.get('image_size')} px; text {text.get('layers')} layers, width {text.get('width')}, "
            f"context {text.get('context_length')}; embedding {config.get('embed_dim')}")


def write_model_card(
    model_dir: str | Path, train_config: dict | None, metrics: dict[str, float], dataset_name: str = "unknown",
    base_model_id: str | None = None,
) -> Path:
    """Render `model_dir/README.md` from the model_cards template: architecture, training config, eval results.

    A LoRA adapter folder keeps PEFT's metadata (`library_name: peft`, `base_model`: the base it loads onto) and
    describes the base's architecture.
    """
    model_dir = Path(model_dir)
    adapter = model_dir / "adapter_config.json"
    base_model = json.loads(adapter.read_text())["base_model_name_or_path"] if adapter.is_file() else None
    config_file = model_dir / "config.json" if not base_model else Path(base_model) / "config.json"
    config = json.loads(config_file.read_text()) if config_file.is_file() else {}
    architecture = describe_architecture(config) if config else f"LoRA adapters on {base_model}"
    if base_model:
        architecture = f"LoRA adapters on {architecture}"
    training = ""
    if train_config:
        keys = ("model", "init_from", "data", "num_epochs", "batch_size", "gradient_accumulation_steps",
                "learning_rate", "weight_decay", "mixed_precision", "lora", "seed")
        values = {k: _public(train_config.get(k)) for k in keys if train_config.get(k) not in (None, False)}
        if train_config.get("model_overrides") and "model" in values:  # the preset was changed: name it as such
            values["model"] = f"{values['model']} with model_overrides (the architecture above)"
        if train_config.get("lora"):
            values["lora"] = f"r={train_config.get('lora_r')}, alpha={train_config.get('lora_alpha')}"
        training = "; ".join(f"{k}={v}" for k, v in values.items())
    dataset = _public(dataset_name)
    results = eval_results_for_card(metrics, dataset) if metrics else None
    card = sarclip_model_card(architecture=architecture, source="trained with `python -m train`", training=training,
                              eval_results=results,
                              base_model=(base_model_id or _public(base_model)) if base_model else None,
                              library_name="peft" if base_model else "transformers",
                              datasets=[dataset] if dataset and dataset != "unknown" else None)
    path = model_dir / CARD_FILE
    card.save(path)
    return path


def _public(value):
    """Local paths as their last part (a card or pushed file never shows this machine's folders)."""
    if isinstance(value, str) and (value.startswith(("/", "./", "../", "~")) or Path(value).exists()):
        return Path(value).name
    return value


def refresh_model_card(model_dir: str | Path, base_model: str | None = None) -> Path:
    """Rebuild the card of a finished run from its saved `train_config.yaml` and `eval_results.json` (`base_model`:
    the Hub id of a LoRA run's base, shown instead of its local folder name)."""
    model_dir = Path(model_dir)
    config = yaml.safe_load((model_dir / CONFIG_FILE).read_text()) if (model_dir / CONFIG_FILE).is_file() else None
    metrics = json.loads((model_dir / EVAL_FILE).read_text()) if (model_dir / EVAL_FILE).is_file() else {}
    return write_model_card(model_dir, config, metrics, dataset_name=(config or {}).get("data", "unknown"),
                            base_model_id=base_model)


def push_model_dir(model_dir: str | Path, repo_id: str, private: bool = False, base_model: str | None = None) -> str:
    """Upload a model folder (weights or adapters, processor, remote code, config, eval results) to the Hub.

    A SARCLIP folder gets its model card rebuilt from the folder's `train_config.yaml` and `eval_results.json`; a
    SAR-KnowLIP folder keeps the card its trainer wrote (`model_cards.knowlip_model_card`).

    LoRA adapters (the folder, or its `adapter/`) record the local folder of their base model; the pushed copy names
    `base_model` (the base's Hub repo id) instead, so that it loads anywhere and no local path leaves the machine.
    Without `base_model`, adapters on a local base are an error that says so."""
    model_dir = Path(model_dir)
    if not (model_dir / "config.json").is_file() and not (model_dir / "adapter_config.json").is_file():
        raise FileNotFoundError(f"{model_dir}: not a model folder (no config.json or adapter_config.json)")
    family = "SAR-KnowLIP" if model_family(model_dir) == KNOWLIP_MODEL_TYPE else "SARCLIP"
    if family == "SARCLIP":
        refresh_model_card(model_dir, base_model)
    with tempfile.TemporaryDirectory() as staging:  # the copy that goes up; the local folder keeps its base path
        upload = Path(staging) / model_dir.name
        shutil.copytree(model_dir, upload)
        for adapter_config in sorted(upload.rglob("adapter_config.json")):
            _name_hub_base(adapter_config, base_model, adapter_config.relative_to(upload))
        if (upload / CONFIG_FILE).is_file():  # the run's settings, with its local paths as their last part
            settings = yaml.safe_load((upload / CONFIG_FILE).read_text()) or {}
            settings = {key: _public(value) for key, value in settings.items()}
            if base_model and settings.get("init_from"):
                settings["init_from"] = base_model
            (upload / CONFIG_FILE).write_text(yaml.safe_dump(settings, sort_keys=False))
        push_folder(upload, repo_id, private=private, commit_message=f"Upload {family} run", shown=model_dir)
    return repo_id


def _name_hub_base(adapter_config: Path, base_model: str | None, shown: Path) -> None:
    values = json.loads(adapter_config.read_text())
    local = values.get("base_model_name_or_path")
    if base_model:
        values["base_model_name_or_path"] = base_model
        adapter_config.write_text(json.dumps(values, indent=2))
    elif local and (Path(local).is_absolute() or Path(local).exists()):
        raise ValueError(f"{shown}: the LoRA adapters load onto the local folder {local}; pass --base_model "
                         "REPO_ID (that base model on the Hub) so that the pushed adapters load anywhere")


def model_family(model_dir: Path) -> str | None:
    """`model_type` of a model folder, or of the base model a LoRA adapter folder loads onto."""
    adapter = model_dir / "adapter_config.json"
    if adapter.is_file():
        model_dir = Path(json.loads(adapter.read_text())["base_model_name_or_path"])
    config = model_dir / "config.json"
    return json.loads(config.read_text()).get("model_type") if config.is_file() else None
