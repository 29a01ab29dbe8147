"""CLI: ``python -m dataset_scripts build <name> --source DIR --out DIR`` and ``... push DIR REPO``.

Options are checked before any work; bad input is reported as ``error: <what>`` with exit code 2 and no traceback
(``--debug`` shows it).
"""

from __future__ import annotations

import argparse
import dataclasses
import sys
import time
from pathlib import Path

import yaml
from huggingface_hub.utils import validate_repo_id

from .builders import BUILDERS
from .builders.base import NAN_POLICIES
from .captions import load_fluency_check
from sar_utils.command_line import ArgumentParser, run_cli
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
    parser = ArgumentParser(prog="python -m dataset_scripts", description=__doc__)
    parser.add_argument("--debug", action="store_true", help="show the traceback of an error (default: off)")
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
    build.add_argument("--allow-outside-source", action="store_true",
                       help="read image files that tables/annotations name outside --source (refused by default)")
    build.add_argument("--nan-policy", choices=NAN_POLICIES,
                       help="float rasters with NaN/Inf: error = skip and report the file (default), report = keep "
                            "and count them in the build report")
    build.add_argument("--require-checksum", action="store_true",
                       help="mstar_raw: refuse files without Chip_MD5_CheckSum (default: read unverified, reported)")
    build.add_argument("--max-shard-size", default="500MB")
    build.add_argument("--push-to-hub", metavar="REPO", help="upload the result to this Hub dataset repo")
    for option, (kind, text) in BUILDER_OPTIONS.items():
        build.add_argument("--" + option.replace("_", "-"), type=kind, help=text)
    push = commands.add_parser("push", help="upload a built folder to the Hub")
    push.add_argument("folder", type=Path)
    push.add_argument("repo")
    push.add_argument("--private", action="store_true")
    return parser


def _class_names(path: Path) -> dict:
    try:
        names = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, yaml.YAMLError) as err:
        raise DatasetBuildError(path, f"--class-names: unreadable YAML/JSON ({type(err).__name__}: {err})") from None
    if not isinstance(names, dict):
        raise DatasetBuildError(path, "--class-names: expected a mapping of class names to caption words")
    return names


def _fluency_check(spec: str):
    try:
        return load_fluency_check(spec)
    except (ImportError, AttributeError) as err:
        raise ValueError(f"--fluency-check {spec}: cannot import it ({type(err).__name__}: {err})") from None


def _options(args: argparse.Namespace) -> dict:
    config_fields = {field.name for field in dataclasses.fields(BUILDERS[args.name].BUILDER_CONFIG_CLASS)}
    options = {"seed": args.seed, "max_items": args.max_items, "strict": args.strict,
               "test_fraction": args.test_fraction, "class_section": args.class_section, "license": args.license,
               "allow_outside_source": args.allow_outside_source or None, "nan_policy": args.nan_policy}
    if args.class_names:
        options["class_names"] = _class_names(args.class_names)
    if args.fluency_check:
        options["fluency_check"] = _fluency_check(args.fluency_check)
    extra = {name: getattr(args, name) for name in BUILDER_OPTIONS if getattr(args, name) is not None}
    for flag in ("with_boxes", "require_checksum"):
        if getattr(args, flag):
            extra[flag] = True
    if args.bands:
        extra["bands"] = args.bands.split(",")
    unknown = sorted(set(extra) - config_fields)
    if unknown:
        raise ValueError(f"{args.name} does not take --{', --'.join(u.replace('_', '-') for u in unknown)}")
    return {**{k: v for k, v in options.items() if v is not None}, **extra}


def _push(folder: Path, repo: str, private: bool = False) -> None:
    validate_repo_id(repo)
    if not (folder / "README.md").is_file():
        raise DatasetBuildError(folder, "not a built dataset folder (no README.md); build it with "
                                "`python -m dataset_scripts build`")
    info = push_dataset_to_hub(folder, repo, private=private)
    print(f"pushed {folder} to {repo}: {info}")


def _main(argv: list[str]) -> int:
    args = _parser().parse_args(argv)
    if args.command == "push":
        _push(args.folder, args.repo, args.private)
        return 0
    if args.push_to_hub:
        validate_repo_id(args.push_to_hub)
    start = time.perf_counter()
    report = build_dataset(args.name, args.source, args.out, overwrite=args.overwrite,
                           max_shard_size=args.max_shard_size, **_options(args))
    elapsed = time.perf_counter() - start
    print(report.summary())
    print(f"wrote {args.out} in {elapsed:.1f} s ({report.total / elapsed:.0f} examples/s); "
          f"load it with datasets.load_dataset({str(args.out)!r})")
    if args.push_to_hub:
        _push(args.out, args.push_to_hub)
    return 0


def main(argv: list[str] | None = None) -> int:
    """The CLI; user errors are `error: ...` on stderr with exit code 2 (`--debug` shows the traceback)."""
    return run_cli(_main, argv)


if __name__ == "__main__":
    sys.exit(main())
