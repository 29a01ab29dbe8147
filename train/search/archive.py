"""`ArchiveIndex`: an index folder (`build`) opened for queries: text, a SAR image, or both, -> ranked hits.

A text query is embedded as typed (no template); an image query (a chip file, GeoTIFF or array, read with the
processor's SAR radiometry) by the image tower; both together by the normalised sum of the two embeddings (as in
clip-retrieval). Scores are cosine similarities.
"""

from __future__ import annotations

import functools
from pathlib import Path

import datasets
import numpy as np
import torch.nn.functional as F
from PIL import Image

from ..evaluation.encode import encode_images, encode_texts
from ..sarclip.model_io import load_trained_model, resolve_model_dir
from .build import AUTOCAST
from .corpus import scene_tile
from .faiss_index import EMBEDDING_COLUMN, set_nprobe
from .manifest import FAISS_FILE, ITEMS, ArchiveIndexError, check_same_model, model_fingerprint, read_manifest

HIT_FIELDS = ("id", "label", "caption", "path", "scene", "window", "footprint", "split", "row")


class ArchiveIndex:
    """Open `index_dir` with the model it was built with, or with `model` when that is the same model (a copy, the
    Hub repo it was pushed to); any other model is an error."""

    def __init__(self, index_dir: str | Path, model: str | None = None):
        self.index_dir = Path(index_dir)
        self.manifest = read_manifest(self.index_dir)
        self.items = _load_items(self.index_dir, self.manifest)
        model = model or self.manifest["model"]
        model_dir = resolve_model_dir(model)
        check_same_model(self.manifest, model, model_fingerprint(model_dir), self.index_dir)
        self.model, self.processor = load_trained_model(model_dir)
        self.model_dir = model_dir

    def __len__(self) -> int:
        return len(self.items)

    def embed_query(self, text: str | None = None, image=None) -> np.ndarray:
        """(1, D) normalised query embedding; `text` and/or `image` (module docstring)."""
        text = text.strip() if isinstance(text, str) else None
        if not text and image is None:
            raise ValueError("empty query: give a text, an image, or both")
        parts, autocast = [], AUTOCAST[self.manifest.get("precision") or "fp32"]  # as the index was embedded
        if text:
            parts.append(encode_texts(self.model, self.processor, [text], autocast_dtype=autocast))
        if image is not None:
            parts.append(encode_images(self.model, self.processor, [image], autocast_dtype=autocast))
        return F.normalize(sum(parts), dim=-1).numpy().astype(np.float32)

    def search(self, text: str | None = None, image=None, k: int = 20, nprobe: int | None = None) -> list[dict]:
        """The `k` best hits, best first: dicts with `rank`, `score` and the item's `HIT_FIELDS`."""
        if k < 1:
            raise ValueError(f"k must be >= 1, got {k}")
        query = self.embed_query(text, image)
        index = self.items.get_index(EMBEDDING_COLUMN).faiss_index
        set_nprobe(index, nprobe or self.manifest.get("nprobe"))
        scores, found = self.items.get_nearest_examples(EMBEDDING_COLUMN, query[0], k=min(k, len(self.items)))
        hits = []
        for rank, score in enumerate(scores, 1):
            hit = {"rank": rank, "score": round(float(score), 6)}
            hit.update({name: found[name][rank - 1] for name in HIT_FIELDS})
            hits.append(hit)
        return hits

    def pixels(self, hit: dict):
        """What the processor reads for a hit: its scene tile, its file, or its row of the indexed data set."""
        if hit["scene"]:
            return scene_tile(hit["scene"], hit["window"])
        if hit["path"] and Path(hit["path"]).is_file():
            return hit["path"]
        return self._dataset[hit["split"]][hit["row"]]["image"]

    def render(self, hit: dict, size: int = 192) -> Image.Image:
        """A hit as the model sees it (the processor's SAR radiometry, centre square), as an 8-bit RGB image."""
        return render_sar(self.processor, self.pixels(hit), size)

    @functools.cached_property
    def _dataset(self) -> datasets.DatasetDict:
        from ..sarclip.data import eval_data_config, load_image_text_dataset

        source = self.manifest["source"]
        return load_image_text_dataset(eval_data_config(self.model_dir, source, None))


def render_sar(processor, image, size: int = 192) -> Image.Image:
    """Any raster the processor reads -> the 8-bit RGB picture of its [-1, 1] model input (no standardisation)."""
    planes = processor.image_processor.to_pixel_values(image, "query image", size=size, do_resize=True,
                                                       standardize=False)
    array = ((planes.clamp(-1, 1) + 1) * 127.5).round().byte().permute(1, 2, 0).numpy()
    return Image.fromarray(array)


def _load_items(index_dir: Path, manifest: dict) -> datasets.Dataset:
    items_dir, faiss_file = index_dir / ITEMS, index_dir / FAISS_FILE
    try:
        items = datasets.load_from_disk(str(items_dir))
    except (FileNotFoundError, OSError, ValueError) as err:
        raise ArchiveIndexError(f"{items_dir}: missing or corrupt ({err}); rebuild the index") from None
    if not isinstance(items, datasets.Dataset) or EMBEDDING_COLUMN not in items.column_names:
        raise ArchiveIndexError(f"{items_dir}: not an index items folder (no {EMBEDDING_COLUMN} column)")
    if len(items) != manifest["rows"]:
        raise ArchiveIndexError(f"{items_dir}: {len(items)} rows, the manifest says {manifest['rows']}; rebuild the "
                                "index")
    if not faiss_file.is_file():
        raise ArchiveIndexError(f"{faiss_file}: missing; rebuild the index")
    try:
        items.load_faiss_index(EMBEDDING_COLUMN, str(faiss_file))
    except RuntimeError as err:
        raise ArchiveIndexError(f"{faiss_file}: corrupt, faiss cannot read it ({str(err).strip().splitlines()[-1]}); "
                                "rebuild the index") from None
    index = items.get_index(EMBEDDING_COLUMN).faiss_index
    if index.ntotal != len(items) or index.d != manifest["embedding_dim"]:
        raise ArchiveIndexError(f"{faiss_file}: {index.ntotal} vectors of {index.d} dimensions, expected "
                                f"{len(items)} of {manifest['embedding_dim']}; rebuild the index")
    return items
