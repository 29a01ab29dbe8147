"""SAR archive search and zero-shot classification in the browser (Gradio; runs as a Hugging Face Space as it is).

    python demo/app.py --model runs/quickstart/final --index runs/index   # then open http://127.0.0.1:7860

- Zero-shot: upload a SAR chip or GeoTIFF (float dB, dual-pol, 16-bit, 8-bit: read with the SARCLIP processor's
  radiometry), edit the class labels, get the class probabilities.
- Search (with --index): a text, a SAR image or both -> a gallery of the best matching tiles of the archive.
In a Space, `--model` / `--index` default to the variables SAR_MODEL / SAR_INDEX, else the folders `model/` and
`index/` beside this file.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

import gradio as gr

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))  # the repository's packages, when run from a checkout without `pip install -e .`

from modeling_sarclip.pipeline_sarclip import SAR_ZERO_SHOT_TASK  # noqa: E402
from train.sarclip.model_io import load_trained_model  # noqa: E402
from train.search import ArchiveIndex, render_sar  # noqa: E402

DEFAULT_LABELS = "ship, vehicle, aircraft, building, storage tank"
DEFAULT_TEMPLATE = "a SAR image of a {}."
FILE_TYPES = [".tif", ".tiff", ".png", ".jpg", ".jpeg", ".bmp"]
HIT_COLUMNS = ["rank", "score", "id", "label", "where"]


class SarApp:
    """The app's model (and index): zero-shot classification and archive search, as plain functions."""

    def __init__(self, model: str, index: str | None = None):
        if index:
            self.archive = ArchiveIndex(index, model)
            self.model, self.processor = self.archive.model, self.archive.processor
        else:
            self.archive = None
            self.model, self.processor = load_trained_model(model)
        from transformers import pipeline

        self.classifier = pipeline(SAR_ZERO_SHOT_TASK, model=self.model, tokenizer=self.processor.tokenizer,
                                   image_processor=self.processor.image_processor)

    def default_labels(self) -> str:
        words = self.archive.manifest.get("class_words") if self.archive else None
        return ", ".join(words.values()) if words else DEFAULT_LABELS

    def classify(self, image_file: str | None, labels: str, template: str):
        if not image_file:
            raise gr.Error("Upload a SAR chip or GeoTIFF first.")
        candidates = [label.strip() for label in labels.split(",") if label.strip()]
        if len(candidates) < 2:
            raise gr.Error("Give at least two comma-separated class labels.")
        if "{}" not in template:
            raise gr.Error("The template needs a {} where the label goes, e.g. 'a SAR image of a {}.'")
        try:
            preview = render_sar(self.processor, image_file)
            scores = self.classifier(image_file, candidate_labels=candidates, hypothesis_template=template)
        except (OSError, ValueError) as err:
            raise gr.Error(f"{Path(image_file).name}: {err}") from None
        return preview, {item["label"]: float(item["score"]) for item in scores}

    def search(self, text: str, image_file: str | None, k: int):
        if self.archive is None:
            raise gr.Error("No index loaded: start the app with --index INDEX_DIR.")
        if not (text or "").strip() and not image_file:
            raise gr.Error("Type a query or upload a SAR image (or both).")
        try:
            hits = self.archive.search(text, image_file, int(k))
        except (OSError, ValueError) as err:
            raise gr.Error(str(err)) from None
        gallery = [(self.archive.render(hit), f"#{hit['rank']} {hit['score']:.3f} {hit['label'] or hit['id']}")
                   for hit in hits]
        table = [[hit["rank"], round(hit["score"], 4), hit["id"], hit["label"] or "", _where(hit)] for hit in hits]
        return gallery, table


def _where(hit: dict) -> str:
    if hit["footprint"]:
        return "lon/lat " + ", ".join(f"{value:.5f}" for value in hit["footprint"])
    return hit["path"] or f"{hit['split']}/{hit['row']}"


def build_demo(app: SarApp) -> gr.Blocks:
    with gr.Blocks(title="SAR archive search") as demo:
        gr.Markdown("# SAR archive search\nSARCLIP zero-shot classification and text/image search over a SAR "
                    "archive. Uploads are read with the SAR radiometry (float dB, dual-pol VV/VH, 16-bit, 8-bit).")
        with gr.Tab("Search", visible=app.archive is not None):
            if app.archive is not None:
                kind = "tiles" if app.archive.manifest["kind"] == "scenes" else "images"
                gr.Markdown(f"Index: {len(app.archive)} {kind} of `{Path(app.archive.manifest['source']).name}`",
                            elem_id="index-info")
            with gr.Row():
                query = gr.Textbox(label="Text query", placeholder="two ships near a breakwater", elem_id="query")
                query_image = gr.File(label="or a SAR image", file_types=FILE_TYPES, type="filepath")
                k = gr.Slider(1, 50, value=12, step=1, label="hits")
            search_button = gr.Button("Search", variant="primary", elem_id="search-button")
            gallery = gr.Gallery(label="hits", columns=6, height="auto", elem_id="gallery")
            table = gr.Dataframe(headers=HIT_COLUMNS, label="ranked hits", elem_id="hits", interactive=False)
            search_button.click(app.search, [query, query_image, k], [gallery, table])
            query.submit(app.search, [query, query_image, k], [gallery, table])
        with gr.Tab("Zero-shot"):
            with gr.Row():
                image = gr.File(label="SAR chip or GeoTIFF", file_types=FILE_TYPES, type="filepath")
                preview = gr.Image(label="as the model sees it", type="pil", interactive=False)
            labels = gr.Textbox(value=app.default_labels(), label="class labels (comma-separated, editable)",
                                elem_id="labels")
            template = gr.Textbox(value=DEFAULT_TEMPLATE, label="prompt template")
            classify_button = gr.Button("Classify", variant="primary", elem_id="classify-button")
            scores = gr.Label(label="class probabilities", num_top_classes=5, elem_id="scores")
            classify_button.click(app.classify, [image, labels, template], [preview, scores])
    return demo


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default=os.environ.get("SAR_MODEL", str(HERE / "model")),
                        help="SARCLIP model folder or Hub repo id (default: $SAR_MODEL, else demo/model)")
    default_index = os.environ.get("SAR_INDEX") or (str(HERE / "index") if (HERE / "index").is_dir() else None)
    parser.add_argument("--index", default=default_index,
                        help="archive index folder from `python -m train index` (default: $SAR_INDEX, else "
                             "demo/index when present; none: zero-shot only)")
    parser.add_argument("--host", default="127.0.0.1", help="address to serve on (0.0.0.0 in a container)")
    parser.add_argument("--port", type=int, default=int(os.environ.get("GRADIO_SERVER_PORT", 7860)), help="port")
    args = parser.parse_args(argv)
    try:
        app = SarApp(args.model, args.index)
    except (OSError, ValueError) as err:
        print(f"error: {err}", file=sys.stderr)
        sys.exit(2)
    build_demo(app).launch(server_name=args.host, server_port=args.port)


if __name__ == "__main__":
    main()
