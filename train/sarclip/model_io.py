"""Load what a run wrote, or any SARCLIP model a user has: a full SARCLIP folder, LoRA adapters on top of their base
model, a native transformers `CLIPModel` folder (`sarclip-export-clip to-clip`), or a Hub repo id of one of these."""

from __future__ import annotations

import json
from pathlib import Path

from peft import PeftConfig, PeftModel

from modeling_sarclip import SarclipModel, SarclipProcessor

ADAPTER_CONFIG = "adapter_config.json"


def resolve_model_dir(model: str | Path) -> Path:
    """A local folder as it is; otherwise `model` is taken as a Hub repo id and resolved to its snapshot folder
    (`huggingface_hub.snapshot_download`, which reads the local cache under `HF_HUB_OFFLINE=1`)."""
    path = Path(model)
    if path.is_dir():
        return path
    if path.exists() or str(model).count("/") != 1 or str(model).startswith((".", "/")):
        raise FileNotFoundError(f"{model}: no such model folder (give a model folder or a Hub repo id org/name)")
    from huggingface_hub import snapshot_download

    try:
        return Path(snapshot_download(str(model)))
    except Exception as err:  # offline without a cached snapshot, unknown repo, no access
        raise FileNotFoundError(f"{model}: not a local folder, and the Hub repo could not be read ({err})") from err


def load_trained_model(model_dir: str | Path, merge: bool = True) -> tuple[SarclipModel, SarclipProcessor]:
    """`(model, processor)` from a model folder or Hub repo id (module docstring); adapters are loaded on their base
    and, by default, merged."""
    model_dir = resolve_model_dir(model_dir)
    config_file = model_dir / "config.json"
    if not (config_file.is_file() or (model_dir / ADAPTER_CONFIG).is_file()):
        raise FileNotFoundError(f"{model_dir}: not a model folder (no config.json or {ADAPTER_CONFIG}); give a run's "
                                "final/ folder, a converted or exported model folder, or a Hub repo id")
    if config_file.is_file() and json.loads(config_file.read_text(encoding="utf-8")).get("model_type") == "clip":
        from modeling_sarclip.convert_sarclip_to_clip import load_clip_as_sarclip

        return load_clip_as_sarclip(model_dir)
    processor = SarclipProcessor.from_pretrained(model_dir)
    if (model_dir / ADAPTER_CONFIG).is_file():
        base = PeftConfig.from_pretrained(model_dir).base_model_name_or_path
        model = PeftModel.from_pretrained(SarclipModel.from_pretrained(base), model_dir)
        return (model.merge_and_unload() if merge else model), processor
    return SarclipModel.from_pretrained(model_dir), processor
