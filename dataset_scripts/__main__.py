"""CLI: ``python -m dataset_scripts build <name> --source DIR --out DIR`` and ``... push DIR REPO``."""

from __future__ import annotations

import argparse
import dataclasses
import sys
import time
from pathlib import Path

import yaml

from .builders import BUILDERS
from .captions import load_fluency_check
from .errors import DatasetBuildError
from .export import build_dataset, push_dataset_to_hub

# builder config fields that only some builders take: name -> (type, help)
BUILDER_OPTIONS = {
    "num_train": (int, "synthetic: train chips (default 1000)"),
    "num_test": (int, "synthetic: test chips (default 200)"),
    "image_size": (int, "synthetic: chip side in pixels (default 128)"),
    "looks": (float, "synthetic: number of looks L of the Gamma speckle (default 3)"),
    "image_key": (str, "csv: image column (default: auto, e.g. filepath/filename)"),
    "caption_key": (str, "csv: caption column (default: auto, e.g. title/caption)"),
    "separator": (str, "csv: column separator (default: sniffed from the header)"),
    "image_root": (str, "csv: folder that relative image paths start from (default: the table's folder)"),
    "unit": (str, "csv: unit of non-8-bit raster values (default dB for float, dn for integers)"),
}


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m dataset_scripts", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)
    build = commands.add_parser("build", help="build parquet shards + dataset card")
    build.add_argument("name", choices=sorted(BUILDERS))
    build.add_argument("--source", type=Path, help="source folder or file (sarclip_mix: a data root); "
                                                    "not used by synthetic")
    build.add_argument("--out", type=Path, required=True, help="output folder (load_dataset(OUT) reads it)")
    build.add_argument("--seed", type=int, default=0)
    build.add_argument("--max-items", type=int, help="seeded random subset of at most N items per split")
    build.add_argument("--strict", action="store_true", help="fail on the first bad item instead of skipping it")
    build.add_argument("--overwrite", action="store_true", help="replace a non-empty --out folder")
    build.add_argument("--test-fraction", type=float, default=0.2, help="test share for sources without splits")
    build.add_argument("--class-section", help="section of captions/class_names.yaml (e.g. sar_aircraft)")
    build.add_argument("--class-names", type=Path, help="YAML/JSON mapping of extra class names to caption words")
    build.add_argument("--license", help="license field of the dataset card")
    build.add_argument("--fluency-check", help="'package.module:function' applied to each image's captions")
    build.add_argument("--with-boxes", action="store_true", help="synthetic: several targets with boxes")
    build.add_argument("--bands", help="csv: comma-separated band names of non-8-bit rasters, e.g. VV,VH")
    build.add_argument("--max-shard-size", default="500MB")
    build.add_argument("--push-to-hub", metavar="REPO", help="upload the result to this Hub dataset repo")
    for option, (kind, text) in BUILDER_OPTIONS.items():
        build.add_argument("--" + option.replace("_", "-"), type=kind, help=text)
    push = commands.add_parser("push", help="upload a built folder to the Hub")
    push.add_argument("folder", type=Path)
    push.add_argument("repo")
    push.add_argument("--private", action="store_true")
    return parser


def _options(args: argparse.Namespace) -> dict:
    config_fields = {field.name for field in dataclasses.fields(BUILDERS[args.name].BUILDER_CONFIG_CLASS)}
    options = {"seed": args.seed, "max_items": args.max_items, "strict": args.strict,
               "test_fraction": args.test_fraction, "class_section": args.class_section, "license": args.license}
    if args.class_names:
        options["class_names"] = yaml.safe_load(args.class_names.read_text(encoding="utf-8"))
    if args.fluency_check:
        options["fluency_check"] = load_fluency_check(args.fluency_check)
    extra = {name: getattr(args, name) for name in BUILDER_OPTIONS if getattr(args, name) is not None}
    if args.with_boxes:
        extra["with_boxes"] = True
    if args.bands:
        extra["bands"] = args.bands.split(",")
    unknown = sorted(set(extra) - config_fields)
    if unknown:
        raise SystemExit(f"error: {args.name} does not take --{', --'.join(u.replace('_', '-') for u in unknown)}")
    return {**{k: v for k, v in options.items() if v is not None}, **extra}


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    if args.command == "push":
        info = push_dataset_to_hub(args.folder, args.repo, private=args.private)
        print(f"pushed {args.folder} to {args.repo}: {info}")
        return 0
    if args.name != "synthetic" and args.source is None:
        raise SystemExit(f"error: {args.name} needs --source")
    start = time.perf_counter()
    try:
        report = build_dataset(args.name, args.source, args.out, overwrite=args.overwrite,
                               max_shard_size=args.max_shard_size, **_options(args))
    except (DatasetBuildError, FileExistsError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 1
    elapsed = time.perf_counter() - start
    print(report.summary())
    print(f"wrote {args.out} in {elapsed:.1f} s ({report.total / elapsed:.0f} examples/s); "
          f"load it with datasets.load_dataset({str(args.out)!r})")
    if args.push_to_hub:
        push_dataset_to_hub(args.out, args.push_to_hub)
        print(f"pushed to {args.push_to_hub}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
