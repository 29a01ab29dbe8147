"""`python -m train index MODEL DATA --out INDEX_DIR`: embed an archive and write its searchable index.

The index folder holds `items/` (a `datasets` folder: `id`, `split`, `row`, `path`, `label`, `caption`, `scene`,
`window` [row, col, height, width], `footprint` [lon_min, lat_min, lon_max, lat_max], `embedding`),
`embedding.faiss` (`faiss_index`) and `manifest.json` (`manifest`).

Resumable: embeddings are written in chunks of `chunk_rows` rows to a work folder beside the output
(`.<name>.partial/`, with the build's plan); a rerun of the same command after a kill appends from the first missing
chunk and never re-embeds a finished one. A work folder of another build (other model, data or settings) is refused.
The finished index appears in one rename; an existing index is replaced only with `overwrite`, and a folder that
is not an index never.
"""

from __future__ import annotations

import hashlib
import json
import shutil
import time
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import datasets
import numpy as np
import pyarrow as pa
import torch
from datasets.arrow_writer import ArrowWriter
from tqdm.auto import tqdm

from dataset_scripts.geovl.tiling import PAPER_TILE_SIDE_M
from modeling_sarclip import SarclipConfig
from sar_utils.atomic import atomic_file, folder_lock, replace_folder, staging_folder, write_json

from ..common.config import check_options, option
from ..evaluation.encode import encode_images
from ..sarclip.model_io import load_trained_model, resolve_model_dir
from ..sarclip.performance import can_compile, compile_image_tower_for_inference
from .corpus import DEFAULT_MIN_VALID, GEOTIFF_SUFFIXES, Corpus, dataset_corpus, is_scene_source, scene_corpus
from .faiss_index import (
    EMBEDDING_COLUMN, EmbeddingColumn, build_faiss_index, index_factory_for, set_nprobe, tune_nprobe,
)
from .manifest import FAISS_FILE, FORMAT, ITEMS, MANIFEST, VERSION, ArchiveIndexError, model_fingerprint

PLAN = "plan.json"
# `compile auto`: the frozen compile saves about 10 % of the eager embedding time (ViT-B-32 on CPU) and costs about 15 s
# per batch shape (two per build: the batch and a remainder); measured on 5,171 MSTAR chips, 212 s compiled against
# 197 s eager (2026-12-07). It is used where the saving should be twice the cost: from 20,000 ViT-B-32 images, or the
# same image-tower work (multiply-adds) in more images of a smaller tower or fewer of a larger one.
COMPILE_PAYS_FROM_VIT_B32_IMAGES = 20_000
AUTOCAST = {"fp32": None, "bf16": torch.bfloat16}
PARTS = "embeddings"


@dataclass
class IndexSettings:
    """How an archive is indexed; bounds are checked (`check_options`) before any work."""

    splits: list[str] | None = option(None, "dataset splits to index (default: all)")
    batch_size: int = option(64, "images per forward pass", min=1)
    tile_side_m: float = option(PAPER_TILE_SIDE_M, "GeoTIFF scenes: SRC tile side in metres (SAR-GEOVL: 1024)", gt=0)
    min_valid: float = option(DEFAULT_MIN_VALID, "GeoTIFF scenes: least fraction of valid pixels of a kept tile",
                              min=0, max=1)
    index_factory: str = option("auto", "faiss index_factory string, or auto (faiss_index.index_factory_for)")
    target_recall: float = option(0.95, "recall@10 against exact search that picks nprobe", gt=0, max=1)
    chunk_rows: int = option(1024, "rows per resumable embedding chunk", min=1)
    precision: str = option("fp32", "fp32, or bf16 (CPU autocast: several times faster with bf16 units)",
                            choices=tuple(AUTOCAST))
    compile: str = option("auto", "compile the image tower for embedding (performance.compile_image_tower_for_"
                          "inference): true, false, or auto (ViT towers, from the work of "
                          f"{COMPILE_PAYS_FROM_VIT_B32_IMAGES:,} ViT-B-32 images, with a C++ compiler)",
                          choices=("auto", "true", "false"))
    seed: int = option(0, "sampling of the index training and tuning vectors", min=0)


def build_index(model: str, data: str, out: str | Path, settings: IndexSettings | None = None,
                overwrite: bool = False) -> Path:
    """Embed `data` (anything `--data` takes, or GeoTIFF scenes) with `model` and write the index to `out`."""
    settings = settings or IndexSettings()
    check_options(settings)
    out = Path(out)
    _check_output(out, overwrite)
    started = time.time()
    model_dir = resolve_model_dir(model)
    sarclip, processor = load_trained_model(model_dir)
    corpus = load_corpus(model_dir, data, settings)
    print(f"{data}: {len(corpus.rows)} {'tiles' if corpus.kind == 'scenes' else 'images'} to index"
          + "".join(f"; {count} {why} left out" for why, count in corpus.skipped.items()))
    plan = dict(model=_name(model), model_fingerprint=model_fingerprint(model_dir), source=_name(data),
                kind=corpus.kind, rows=len(corpus.rows), ids_sha1=_ids_digest(corpus.rows),
                splits=settings.splits, tile_side_m=settings.tile_side_m if corpus.kind == "scenes" else None,
                min_valid=settings.min_valid if corpus.kind == "scenes" else None, chunk_rows=settings.chunk_rows,
                precision=settings.precision)
    compile_tower = wants_compile(settings.compile, len(corpus.rows), sarclip.config.vision_config)
    work = out.with_name(f".{out.name}.partial")
    with folder_lock(work):
        _check_plan(work, plan)
        if compile_tower:
            print("compiling the image tower for embedding (a one-off of about 15 s per batch shape; --compile false "
                  "skips it)")
            compile_image_tower_for_inference(sarclip)
        chunks = _embed(work, corpus, sarclip, processor, settings)
        staging = staging_folder(out)
        try:
            manifest = _write_index(staging, corpus, chunks, plan, settings)
            manifest["build_seconds"] = round(time.time() - started, 1)
            write_json(staging / MANIFEST, manifest, indent=2)
            replace_folder(staging, out)
        finally:
            shutil.rmtree(staging, ignore_errors=True)
    shutil.rmtree(work, ignore_errors=True)
    return out


def wants_compile(setting: str, images: int, vision_config) -> bool:
    """`IndexSettings.compile` for a corpus of `images` and an image tower; `true` without a C++ compiler is an error,
    not a fallback; `auto` leaves ResNet towers eager (not measured)."""
    if setting == "false":
        return False
    if setting == "auto":
        if vision_config.is_resnet:
            return False
        reference = SarclipConfig.from_preset("ViT-B-32").vision_config
        pays = images * vit_multiply_adds(vision_config) >= (
            COMPILE_PAYS_FROM_VIT_B32_IMAGES * vit_multiply_adds(reference))
        return pays and can_compile()
    if not can_compile():
        raise ValueError("--compile true: no C++ compiler found (set CXX, or install g++); pass --compile false")
    return True


def vit_multiply_adds(vision_config) -> int:
    """Multiply-adds of a ViT image tower's blocks per image: tokens x layers x 12 width^2 (qkv, output projection,
    4x MLP)."""
    tokens = (vision_config.image_size // vision_config.patch_size) ** 2 + 1
    return tokens * vision_config.layers * 12 * vision_config.width**2


def load_corpus(model_dir: Path, data: str, settings: IndexSettings) -> Corpus:
    if Path(data).suffix.lower() in GEOTIFF_SUFFIXES and not Path(data).exists():
        raise FileNotFoundError(f"{data}: no such GeoTIFF (paths are relative to {Path.cwd()})")
    if is_scene_source(data):
        return scene_corpus(data, settings.tile_side_m, settings.min_valid)
    from dataset_scripts.captions.class_names import load_class_words

    from ..sarclip.data import eval_data_config, load_image_text_dataset

    config = eval_data_config(model_dir, data, None)
    return dataset_corpus(data, load_image_text_dataset(config), settings.splits, load_class_words(config.class_words))


def _check_output(out: Path, overwrite: bool) -> None:
    if out.exists() and not (out / MANIFEST).is_file():
        if out.is_dir() and not any(out.iterdir()):
            return
        raise ArchiveIndexError(f"{out}: exists and is not an archive index; choose another --out (nothing there is "
                                "replaced)")
    if out.exists() and not overwrite:
        raise ArchiveIndexError(f"{out}: an index is already there; pass --overwrite to replace it, or choose "
                                "another --out")


def _name(value: str) -> str:
    """A local path as an absolute path (the manifest is read from elsewhere), anything else (Hub ids) as given."""
    return str(Path(value).resolve()) if Path(value).exists() else str(value)


def _ids_digest(rows: list[dict]) -> str:
    return hashlib.sha1("\n".join(row["id"] for row in rows).encode()).hexdigest()


def _check_plan(work: Path, plan: dict) -> None:
    path = work / PLAN
    if path.is_file():
        previous = json.loads(path.read_text(encoding="utf-8"))
        changed = sorted(key for key in plan if previous.get(key) != plan[key])
        if changed:
            raise ArchiveIndexError(
                f"{work}: holds an unfinished build of another index (changed: {', '.join(changed)}); rerun that "
                f"build's command to finish it, or delete {work} to start this one")
        return
    write_json(path, plan, indent=2)


def _embed(work: Path, corpus: Corpus, model, processor, settings: IndexSettings) -> list[tuple[int, Path]]:
    """`(first row, .npy file)` of every chunk of embeddings: finished chunks are kept, the others computed and
    saved one by one."""
    parts = work / PARTS
    parts.mkdir(exist_ok=True)
    total, step = len(corpus.rows), settings.chunk_rows
    chunks = []
    with tqdm(total=total, desc="embedding", unit="img") as bar:
        for start in range(0, total, step):
            path = parts / f"{start:010d}.npy"
            rows = corpus.rows[start : start + step]
            if path.is_file():
                done = np.load(path, mmap_mode="r").shape[0]
                if done != len(rows):
                    raise ArchiveIndexError(f"{path}: {done} rows, expected {len(rows)}; delete it to embed that "
                                            "chunk again")
            else:
                chunk = encode_images(model, processor, corpus.pixels(rows), settings.batch_size,
                                      AUTOCAST[settings.precision]).numpy()
                with atomic_file(path) as tmp:
                    np.save(tmp, chunk)
            chunks.append((start, path))
            bar.update(len(rows))
    return chunks


def items_table(rows: list[dict], vectors: np.ndarray) -> pa.Table:
    """Rows and their embeddings as an Arrow table (embeddings: fixed-size float32 lists, from the array without
    Python lists)."""
    vectors = np.ascontiguousarray(vectors, dtype=np.float32)
    columns = {name: pa.array([row[name] for row in rows], kind) for name, kind in (
        ("id", pa.string()), ("split", pa.string()), ("row", pa.int64()), ("path", pa.string()),
        ("label", pa.string()), ("caption", pa.string()), ("scene", pa.string()), ("window", pa.list_(pa.int64())),
        ("footprint", pa.list_(pa.float64())))}
    columns[EMBEDDING_COLUMN] = pa.FixedSizeListArray.from_arrays(pa.array(vectors.reshape(-1)), vectors.shape[1])
    return pa.table(columns)


def write_items(folder: Path, chunks: Iterable[tuple[list[dict], np.ndarray]]) -> datasets.Dataset:
    """Write rows and embeddings, chunk by chunk (the corpus is never in memory whole), as the `datasets` folder
    `folder` (`save_to_disk` layout); returns it memory-mapped."""
    arrow_file = folder.with_name(f".{folder.name}.arrow")
    writer = None
    try:
        for rows, vectors in chunks:
            table = items_table(rows, vectors)
            if writer is None:
                writer = ArrowWriter(path=str(arrow_file), features=datasets.Features.from_arrow_schema(table.schema))
            writer.write_table(table)
        if writer is None:
            raise ValueError("no rows to index")
        writer.finalize()
        datasets.Dataset.from_file(str(arrow_file)).save_to_disk(str(folder))
    finally:
        arrow_file.unlink(missing_ok=True)
    return datasets.load_from_disk(str(folder))


def _write_index(folder: Path, corpus: Corpus, chunks: list[tuple[int, Path]], plan: dict,
                 settings: IndexSettings) -> dict:
    items = write_items(folder / ITEMS, ((corpus.rows[start : start + settings.chunk_rows], np.load(path))
                                         for start, path in chunks))
    vectors = EmbeddingColumn(items)  # read block by block from the memory-mapped Arrow file
    dim = vectors[0:1].shape[1]
    factory = index_factory_for(len(items), dim) if settings.index_factory == "auto" else settings.index_factory
    print(f"faiss index {factory} over {len(items)} embeddings of {dim} dimensions")
    index = build_faiss_index(items, factory, settings.seed)
    nprobe, recall = tune_nprobe(index, vectors, 10, settings.target_recall, settings.seed)
    set_nprobe(index, nprobe)
    items.save_faiss_index(EMBEDDING_COLUMN, str(folder / FAISS_FILE))
    return dict(
        format=FORMAT, version=VERSION, **{key: plan[key] for key in ("model", "model_fingerprint", "source", "kind",
                                                                        "rows", "splits", "tile_side_m", "min_valid",
                                                                        "precision")},
        embedding_dim=int(dim), skipped=corpus.skipped, index_factory=factory, nprobe=nprobe,
        recall_at_10=round(recall, 4), target_recall=settings.target_recall,
        class_words=dict(sorted(corpus.class_words.items())),
        built=time.strftime("%Y-%m-%dT%H:%M:%S%z"),
    )
