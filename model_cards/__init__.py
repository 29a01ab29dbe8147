"""Model card templates (Jinja, rendered with huggingface_hub.ModelCard) for the models this project publishes."""

from pathlib import Path

from huggingface_hub import EvalResult, ModelCard, ModelCardData

TEMPLATES = Path(__file__).parent
SARCLIP_TAGS = ["sar", "remote-sensing", "clip", "sarclip", "zero-shot-image-classification"]
KNOWLIP_TAGS = ["sar", "remote-sensing", "sar-knowlip", "image-text-retrieval", "image-captioning", "vqa"]


# the package's license (pyproject.toml), the default for models trained or converted with it
LICENSE = "apache-2.0"

def _render(template: str, pipeline_tag: str, tags: list[str], model_name: str, license: str | None,
            eval_results: list[EvalResult] | None, base_model: str | None, library_name: str = "transformers",
            datasets: list[str] | None = None, **variables) -> ModelCard:
    """Hub metadata (library, pipeline tag, tags, datasets, model-index when `eval_results` are given) + the
    template."""
    card_data = ModelCardData(library_name=library_name, pipeline_tag=pipeline_tag, license=license, tags=tags,
                              base_model=base_model, model_name=model_name, eval_results=eval_results,
                              datasets=datasets)
    return ModelCard.from_template(card_data, template_path=str(TEMPLATES / template), model_name=model_name,
                                   **variables)


def sarclip_model_card(
    architecture: str,
    source: str,
    training: str = "",
    eval_results: list[EvalResult] | None = None,
    model_name: str = "SARCLIP",
    license: str = LICENSE,
    base_model: str | None = None,
    library_name: str = "transformers",
    datasets: list[str] | None = None,
) -> ModelCard:
    """Card for a SARCLIP folder (`library_name="peft"` for LoRA adapters)."""
    tags = SARCLIP_TAGS + (["lora", "peft"] if library_name == "peft" else [])
    return _render("sarclip.md", "zero-shot-image-classification", tags, model_name, license, eval_results,
                   base_model, library_name, datasets, architecture=architecture, source=source, training=training)


def knowlip_model_card(preset: str, source: str, training: str = "", eval_results: list[EvalResult] | None = None,
                       model_name: str = "SAR-KnowLIP", license: str = LICENSE) -> ModelCard:
    """Card for a SAR-KnowLIP folder (retrieval, captioning and VQA heads share the checkpoint)."""
    return _render("knowlip.md", "image-text-to-text", KNOWLIP_TAGS, model_name, license, eval_results, None,
                   preset=preset, source=source, training=training)


def clip_export_model_card(model_name: str, architecture: str, source: str, image_size: int, license: str | None = None,
                           base_model: str | None = None) -> ModelCard:
    """Card for a native transformers `CLIPModel` export of a SARCLIP ViT: what its processor can and cannot do."""
    return _render("clip_export.md", "zero-shot-image-classification", SARCLIP_TAGS, model_name, license, None,
                   base_model, architecture=architecture, source=source, image_size=image_size)
