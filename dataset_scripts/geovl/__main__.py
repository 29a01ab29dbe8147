"""CLI: ``python -m dataset_scripts.geovl caption ...`` (GeoTIFFs -> HCoT-captioned SAR-GEOVL parquet),
``python -m dataset_scripts.geovl describe ...`` (a labelled dataset -> the same 8 HCoT fields, no LLM) and
``python -m dataset_scripts.geovl vqa ...`` (real VQA sets, train and test)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from sar_utils.command_line import ArgumentParser, run_cli
from ..export import push_dataset_to_hub
from .hcot import HCoTTask, SensorInfo
from .label_captions import FactCaptioner, describe_dataset
from .llm import CachedLLM, OpenAIChatBackend, ResponseCache, TransformersTextBackend
from .pipeline import DEFAULT_SCALE_SIDES_M, build_geovl_dataset
from .quality import QualityConfig
from .vqa_sets import save_vqa_sets


def _sides(text: str) -> tuple[float, float, float]:
    sides = tuple(float(v) for v in text.split(","))
    if len(sides) != 3:
        raise argparse.ArgumentTypeError(f"expected three comma-separated sides in metres, got {text!r}")
    return sides


def main(argv: list[str] | None = None) -> int:
    """User errors: `error: ...` on stderr, exit code 2 (`--debug` shows the traceback)."""
    return run_cli(_main, argv)


def _main(argv: list[str]) -> int:
    parser = ArgumentParser(prog="python -m dataset_scripts.geovl", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)

    cap = sub.add_parser("caption", help="GeoTIFFs -> SRC tiles -> quality screen -> HCoT captions -> parquet")
    cap.add_argument("geotiffs", nargs="+", type=Path)
    cap.add_argument("--out", type=Path, required=True, help="output dataset folder")
    cap.add_argument("--task", choices=[t.value for t in HCoTTask], required=True)
    cap.add_argument("--scales", type=_sides, default=DEFAULT_SCALE_SIDES_M,
                     help="large,medium,small tile sides in metres (default %(default)s)")
    cap.add_argument("--backend", choices=["openai", "local", "facts"], default="openai",
                     help="openai: endpoint from SAR_LLM_BASE_URL / SAR_LLM_MODEL / SAR_LLM_API_KEY; local: "
                          "--local-model; facts: no LLM, fields from geo metadata and image statistics")
    cap.add_argument("--local-model", type=Path, help="folder of a transformers text-generation model")
    cap.add_argument("--cache", type=Path, help="LLM response cache folder (default: OUT/llm_cache)")
    cap.add_argument("--workers", type=int, default=1, help="concurrent LLM requests")
    cap.add_argument("--place", help="known place name of the scene, e.g. 'Beijing Daxing Airport'")
    cap.add_argument("--platform")
    cap.add_argument("--band")
    cap.add_argument("--polarisations", default="", help="comma-separated band order, e.g. VV,VH")
    cap.add_argument("--input-scale", choices=["db", "linear"],
                     help="radiometric scale of float/16-bit input (default: inferred, see dynamic_range.py)")
    cap.add_argument("--min-entropy", type=float, default=QualityConfig.min_entropy_bits)
    cap.add_argument("--knn-k", type=int, default=QualityConfig.knn_k)
    cap.add_argument("--push-to-hub", metavar="REPO", help="upload the result to this Hub dataset repo")

    describe = sub.add_parser("describe", help="labelled dataset -> 8 HCoT fields per image from its labels, boxes "
                                               "and metadata (no LLM)")
    describe.add_argument("data", help="any --data value of dataset_scripts.loading (build folder, image folder, CSV)")
    describe.add_argument("--out", type=Path, required=True)
    describe.add_argument("--task", choices=[t.value for t in HCoTTask], help="words the regional function")

    vqa = sub.add_parser("vqa", help="HRSID / SAR-AIRcraft / MSTAR -> VQA parquet (train and test, 4:1 by image)")
    vqa.add_argument("--data-dir", type=Path, required=True, help="the shared/data folder")
    vqa.add_argument("--out", type=Path, required=True)
    vqa.add_argument("--mstar-per-class", type=int, help="keep the first N MSTAR test chips per class")
    vqa.add_argument("--train-views", type=int, default=1, choices=range(1, 9), metavar="{1..8}",
                     help="store each HRSID / SAR-AIRcraft train image in this many dihedral views (flips, 90-degree "
                          "rotations), answers recomputed; test images stay as they are (default: 1)")
    vqa.add_argument("--push-to-hub", metavar="REPO", help="upload the result to this Hub dataset repo")

    args = parser.parse_args(argv)
    if args.command == "vqa":
        ds = save_vqa_sets(args.data_dir, args.out, args.mstar_per_class, args.train_views)
        print(f"wrote {', '.join(f'{len(split)} {name}' for name, split in ds.items())} questions to {args.out}")
        _push(args)
        return
    if args.command == "describe":
        describe_dataset(args.data, args.out, args.task)
        print(f"wrote {args.out}")
        return
    if args.backend == "facts":
        llm = FactCaptioner()
    elif args.backend == "local":
        if args.local_model is None:
            parser.error("--backend local needs --local-model")
        llm = CachedLLM(TransformersTextBackend(args.local_model), ResponseCache(args.cache or args.out / "llm_cache"))
    else:
        llm = CachedLLM(OpenAIChatBackend.from_env(), ResponseCache(args.cache or args.out / "llm_cache"))
    report = build_geovl_dataset(
        args.geotiffs,
        args.out,
        llm,
        HCoTTask(args.task),
        scale_sides_m=args.scales,
        sensor=SensorInfo(args.platform, args.band, tuple(p for p in args.polarisations.split(",") if p)),
        place=args.place,
        quality=QualityConfig(min_entropy_bits=args.min_entropy, knn_k=args.knn_k),
        input_scale=args.input_scale,
        num_workers=args.workers,
    )
    print(report.summary())
    _push(args)


def _push(args) -> None:
    """The same Hub upload as `python -m dataset_scripts push` (dataset card and parquet shards)."""
    if args.push_to_hub:
        push_dataset_to_hub(args.out, args.push_to_hub)
        print(f"pushed {args.out} to {args.push_to_hub}")


if __name__ == "__main__":
    sys.exit(main())
