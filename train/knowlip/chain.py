"""The whole SAR-KnowLIP chain on GeoTIFFs, offline, in one command:

    python -m train.knowlip chain ../shared/data/sarclip_examples/example.tif --out runs/chain

1. SAR-GEOVL captioning (`dataset_scripts.geovl.build_geovl_dataset`): SRC tiles at three scales, GLCM + KNN
   screening, 8 HCoT fields per tile from the caption backend: `facts` (no LLM: geo metadata + image statistics,
   `dataset_scripts.geovl.label_captions`), `local` (a transformers text-generation model folder) or `openai`;
2. a train / test split by large tile (all tiles nested in one large tile fall on the same side, so no test tile
   overlaps a training tile; every fourth large tile in id order is test, at least one);
3. SCIO (`fit_scio`, the three stages) on the training tiles, their 8 fields being the sub-texts;
4. evaluation (`evaluate_knowlip`): retrieval and captioning on the test tiles, the reference text of a tile being
   its 8 fields joined.
Each step's wall time and the results go to `OUT/chain_report.json`. The example GeoTIFF (224 x 224 px at 10 m) at
the default scales 1000 / 500 / 250 m gives 4 large, 16 medium and 64 small tiles.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import datasets
from accelerate import PartialState

from dataset_scripts.cards import dataset_card
from dataset_scripts.export import write_dataset_folder
from dataset_scripts.geovl.hcot import HCoTTask
from dataset_scripts.geovl.label_captions import FactCaptioner
from dataset_scripts.geovl.llm import CachedLLM, OpenAIChatBackend, ResponseCache, TransformersTextBackend
from dataset_scripts.geovl.pipeline import build_geovl_dataset
from sar_utils.atomic import write_json

from ..common.checkpointing import claim_run_folder

from .evaluate import evaluate_knowlip
from .fit import fit_scio
from .run_config import ScioRunConfig

TINY_CONFIG = Path(__file__).with_name("configs") / "tiny_synthetic.yaml"
REPORT_FILE = "chain_report.json"
RUN_OUTPUTS = ("geovl", "tiles", "scio", "eval")


def add_chain_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("geotiffs", nargs="+", type=Path, help="geo-referenced SAR GeoTIFFs")
    parser.add_argument("--out", type=Path, required=True, help="run folder (geovl/, tiles/, scio/, eval/)")
    parser.add_argument("--backend", choices=["facts", "local", "openai"], default="facts",
                        help="HCoT caption backend (facts: no LLM; local: --local-model; openai: SAR_LLM_* env)")
    parser.add_argument("--local-model", type=Path, help="folder of a transformers text-generation model")
    parser.add_argument("--task", choices=[t.value for t in HCoTTask], default="terrain", help="HCoT instruction set")
    parser.add_argument("--scales", default="1000,500,250", help="large,medium,small tile sides in metres")
    parser.add_argument("--scio-config", type=Path, default=TINY_CONFIG, help="SCIO run config (YAML)")
    parser.add_argument("--stage-epochs", default="2,1,1", help="SCIO epochs of stages 1, 2, 3")
    parser.add_argument("--overwrite", action="store_true",
                        help="replace the chain run in --out (each of its folders is replaced when the new one is "
                             "complete); without it a folder that holds one is refused before anything is written")


def run_chain_cli(args: argparse.Namespace) -> int:
    report = run_chain(args.geotiffs, args.out, args.backend, args.local_model, HCoTTask(args.task),
                       tuple(float(v) for v in args.scales.split(",")), args.scio_config,
                       tuple(int(v) for v in args.stage_epochs.split(",")), args.overwrite)
    print(json.dumps(report, indent=2))
    return 0


def caption_backend(backend: str, local_model: Path | None, cache: Path):
    if backend == "facts":
        return FactCaptioner()
    if backend == "local":
        if local_model is None or not local_model.is_dir():
            raise ValueError(f"--backend local needs --local-model, a model folder (got {local_model})")
        return CachedLLM(TransformersTextBackend(local_model), ResponseCache(cache))
    return CachedLLM(OpenAIChatBackend.from_env(), ResponseCache(cache))


def run_chain(geotiffs: list[Path], out: Path, backend: str = "facts", local_model: Path | None = None,
              task: HCoTTask = HCoTTask.TERRAIN, scales: tuple[float, float, float] = (1000.0, 500.0, 250.0),
              scio_config: Path = TINY_CONFIG, stage_epochs: tuple[int, int, int] = (2, 1, 1),
              overwrite: bool = False) -> dict:
    out = Path(out)
    # before the tiles are rewritten: a used folder is refused, or (overwrite) its old SCIO run is cleared except
    # its model, which the new one replaces when complete (SCIO would otherwise resume or refuse it)
    scio_leftovers = [f"scio/{entry.name}" for entry in sorted((out / "scio").glob("*")) if entry.name != "model"]
    claim_run_folder(out, (*RUN_OUTPUTS, REPORT_FILE), False, overwrite, PartialState(),
                     stale=tuple(scio_leftovers), resumable=False)
    seconds, start = {}, time.perf_counter()
    captioner = caption_backend(backend, local_model, out / "llm_cache")
    captioning = build_geovl_dataset(geotiffs, out / "geovl", captioner, task, scale_sides_m=scales)
    seconds["captioning"] = time.perf_counter() - start

    tiles = split_by_large_tile(datasets.load_dataset(str(out / "geovl"))["train"])
    write_dataset_folder(out / "tiles", {name: [split] for name, split in tiles.items()}, dataset_card(
        "SAR-GEOVL tiles split by large tile", "The `geovl/` tiles of this chain run (`train.knowlip.chain`), split "
        "train / test by large tile: every tile nested in one large tile falls on the same side.\n", ["image-to-text"],
        tags=("geospatial",), rows=sum(len(split) for split in tiles.values())))
    seconds["split"] = time.perf_counter() - start - sum(seconds.values())

    batch_size = ScioRunConfig.from_yaml(scio_config).batch_size
    steps = sum(stage_epochs) * -(-len(tiles["train"]) // batch_size)
    config = ScioRunConfig.from_yaml(scio_config, data=str(out / "tiles"), output_dir=str(out / "scio"),
                                     stage_epochs=stage_epochs, warmup_steps=max(1, steps // 10))
    result = fit_scio(config)
    seconds["scio"] = time.perf_counter() - start - sum(seconds.values())

    test = tiles["test"].select_columns(["image", "text"]).rename_column("text", "caption")
    results = evaluate_knowlip(result.model_dir, None, ["retrieval", "captioning"], out / "eval", data=test,
                               batch_size=16)
    seconds["evaluation"] = time.perf_counter() - start - sum(seconds.values())
    report = {
        "rows": captioning.rows, "quality_rejected": captioning.quality_rejected,
        "train_tiles": len(tiles["train"]), "test_tiles": len(tiles["test"]),
        "noisy_fragments_left": sum(map(sum, result.texts["noise"])),
        "refined_fragments": sum(map(sum, result.texts["refined"])),
        "retrieval_mean_recall": results["retrieval"]["itm"]["mean_recall"],
        "captioning_cider": results["captioning"]["cider"],
        "seconds": {name: round(value, 1) for name, value in seconds.items()},
        "total_seconds": round(time.perf_counter() - start, 1),
    }
    write_json(out / REPORT_FILE, report, indent=2)
    return report


def split_by_large_tile(tiles: datasets.Dataset) -> datasets.DatasetDict:
    """Train / test by the large tile each tile lies in (module docstring)."""
    parent = dict(zip(tiles["id"], tiles["parent_id"]))

    def root(tile_id: str) -> str:
        while parent.get(tile_id):
            tile_id = parent[tile_id]
        return tile_id

    roots = [root(tile_id) for tile_id in tiles["id"]]
    test_roots = set(sorted(set(roots))[3::4] or sorted(set(roots))[-1:])
    if len(set(roots)) < 2:
        raise ValueError(f"the chain needs at least 2 large tiles to split train / test, got {len(set(roots))}; "
                         "use smaller --scales")
    in_test = [r in test_roots for r in roots]
    return datasets.DatasetDict({
        "train": tiles.select([i for i, flag in enumerate(in_test) if not flag]),
        "test": tiles.select([i for i, flag in enumerate(in_test) if flag]),
    })


__all__ = ["add_chain_arguments", "run_chain", "split_by_large_tile"]
