"""Load what a run wrote: a full SARCLIP folder, or LoRA adapters on top of their base model."""

from __future__ import annotations

from pathlib import Path

from peft import PeftConfig, PeftModel

from modeling_sarclip import SarclipModel, SarclipProcessor

ADAPTER_CONFIG = "adapter_config.json"


def load_trained_model(model_dir: str | Path, merge: bool = True) -> tuple[SarclipModel, SarclipProcessor]:
    """`(model, processor)` from a run's model folder; adapters are loaded on their base and, by default, merged."""
    model_dir = Path(model_dir)
    if not model_dir.is_dir():
        raise FileNotFoundError(f"{model_dir}: no such model folder")
    processor = SarclipProcessor.from_pretrained(model_dir)
    if (model_dir / ADAPTER_CONFIG).is_file():
        base = PeftConfig.from_pretrained(model_dir).base_model_name_or_path
        model = PeftModel.from_pretrained(SarclipModel.from_pretrained(base), model_dir)
        return (model.merge_and_unload() if merge else model), processor
    return SarclipModel.from_pretrained(model_dir), processor
