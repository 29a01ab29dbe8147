"""Throughput of dataset_scripts: chips/s for a full build (read + caption + encode to parquet) and for the
synthetic generator alone.

    python bench/bench_dataset_build.py [--data-dir ../shared/data] [--repeats 3]

Everything runs in one process on one core (BLAS threads pinned to 1 before numpy loads); the builders are
single-process. Prints one line per measurement (best of ``--repeats``) and a JSON summary.
"""

from __future__ import annotations

import os

for _variable in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ[_variable] = "1"

import sys
import json  # noqa: E402
import logging  # noqa: E402
import platform  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

import datasets  # noqa: E402

from dataset_scripts import SyntheticSarGenerator, build_dataset, synthetic_dataset  # noqa: E402
from dataset_scripts.captions import ClassNameTable, classification_captions  # noqa: E402
from dataset_scripts.readers import list_mstar_chip_folders, read_image_file  # noqa: E402
from sar_utils.command_line import ArgumentParser, run_cli  # noqa: E402

DEFAULT_DATA_DIR = Path(__file__).resolve().parents[2] / "shared" / "data"


def best_rate(count: int, run, repeats: int) -> tuple[float, float]:
    """(items/s, seconds) of the fastest of ``repeats`` runs of ``run()``."""
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        run()
        best = min(best, time.perf_counter() - start)
    return count / best, best


def build_once(name: str, source: Path | None, **options) -> int:
    with tempfile.TemporaryDirectory(prefix="bench_build_") as tmp:
        return build_dataset(name, source, Path(tmp) / "out", **options).total


def main(argv=None) -> None:
    parser = ArgumentParser(description=__doc__)
    parser.add_argument("--data-dir", type=Path, default=Path(os.environ.get("SAR_DATA_DIR", DEFAULT_DATA_DIR)))
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--synthetic-count", type=int, default=2000)
    args = parser.parse_args(argv)
    datasets.disable_progress_bars()
    logging.getLogger("datasets").setLevel(logging.ERROR)
    results = {"machine": f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores, 1 used"}

    def record(key: str, count: int, run) -> None:
        rate, seconds = best_rate(count, run, args.repeats)
        results[key] = {"chips_per_s": round(rate, 1), "chips": count, "seconds": round(seconds, 3)}
        print(f"{key:<42} {rate:9.1f} chips/s  ({count} chips in {seconds:.2f} s)", flush=True)

    # synthetic generator alone, 128x128, one core
    for with_boxes in (False, True):
        generator = SyntheticSarGenerator(128, seed=0, with_boxes=with_boxes)
        generator.chip(0)  # speckle bank and interpolation matrices
        n = args.synthetic_count
        record(f"synthetic generator 128px{' with boxes' if with_boxes else ''}", n,
               lambda g=generator, n=n: [g.chip(i) for i in range(n)])
    record("synthetic_dataset() in memory 128px", 1200, lambda: synthetic_dataset(num_train=1000, num_test=200))
    record("build synthetic 128px (parquet + card)", 1200,
           lambda: build_once("synthetic", None, num_train=1000, num_test=200))

    soc = args.data_dir / "mstar_soc"
    if soc.is_dir():
        chips = list_mstar_chip_folders(soc)
        table = ClassNameTable("mstar")
        record("MSTAR SOC read (JPEG decode)", len(chips), lambda: [read_image_file(c.path) for c in chips])
        record("MSTAR SOC captions", len(chips),
               lambda: [classification_captions(table[c.class_name].singular, c.relative_path) for c in chips])
        record("build mstar SOC (read+caption+encode)", len(chips), lambda: build_once("mstar", soc))
    else:
        print(f"MSTAR SOC not found at {soc}: skipped")
    print(json.dumps(results, indent=1))


if __name__ == "__main__":
    sys.exit(run_cli(main))
