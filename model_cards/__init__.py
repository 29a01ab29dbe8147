"""Model card templates (Jinja, rendered with huggingface_hub.ModelCard) for the models this project publishes."""

from pathlib import Path

from huggingface_hub import EvalResult, ModelCard, ModelCardData

TEMPLATES = Path(__file__).parent


def sarclip_model_card(
    architecture: str,
    source: str,
    training: str = "",
    eval_results: list[EvalResult] | None = None,
    model_name: str = "SARCLIP",
    license: str = "mit",
    base_model: str | None = None,
) -> ModelCard:
    """Card for a SARCLIP folder: Hub metadata (pipeline tag, tags, model-index when `eval_results` are given)."""
    card_data = ModelCardData(
        library_name="transformers",
        pipeline_tag="zero-shot-image-classification",
        license=license,
        tags=["sar", "remote-sensing", "clip", "sarclip", "zero-shot-image-classification"],
        base_model=base_model,
        model_name=model_name,
        eval_results=eval_results,
    )
    return ModelCard.from_template(
        card_data,
        template_path=str(TEMPLATES / "sarclip.md"),
        model_name=model_name,
        architecture=architecture,
        source=source,
        training=training,
    )


def knowlip_model_card(
    preset: str,
    source: str,
    training: str = "",
    eval_results: list[EvalResult] | None = None,
    model_name: str = "SAR-KnowLIP",
    license: str = "mit",
) -> ModelCard:
    """Card for a SAR-KnowLIP folder (retrieval, captioning and VQA heads share the checkpoint)."""
    card_data = ModelCardData(
        library_name="transformers",
        pipeline_tag="image-text-to-text",
        license=license,
        tags=["sar", "remote-sensing", "sar-knowlip", "image-text-retrieval", "image-captioning", "vqa"],
        model_name=model_name,
        eval_results=eval_results,
    )
    return ModelCard.from_template(
        card_data, template_path=str(TEMPLATES / "knowlip.md"), model_name=model_name, preset=preset, source=source,
        training=training,
    )
