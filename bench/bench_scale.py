"""Scale benchmark: time and peak RSS of the corpus build, the streaming input pipeline and retrieval as N grows.

Each measurement runs in a fresh process (its own peak RSS, children included):

    python bench/bench_scale.py build --pairs 1700000 --out /tmp/scale/1700000 --num-proc 2
    python bench/bench_scale.py stream --data /tmp/scale/1700000 --batch-size 256
    python bench/bench_scale.py retrieval --images 100000 --texts 500000
    python bench/bench_scale.py table --pairs 10000 100000 1700000 --root /tmp/scale   # all three, one table

- build: `write_synthetic_corpus` (64 px chips, 5 captions each: pairs = 5 x chips, 64 shards, --num-proc processes);
- stream: one epoch of `train.sarclip.streaming.StreamingPairs` (read, shuffle buffer 2048, PNG decode) in batches;
- retrieval: `retrieval_recalls_from_features` on 512-d features of a model that retrieves (see `retrieval`), 5 texts
  per image, read block by block from .npy files; the table uses images = pairs / 5 and texts = pairs, up to
  --max-retrieval-texts (default 500k: 100k images x 500k texts).
"""

from __future__ import annotations

import argparse
import json
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from sar_utils.command_line import ArgumentParser, run_cli


def peak_rss_gib() -> float:
    """Peak resident memory of this process (VmHWM) and of its finished worker processes, GiB."""
    status = Path("/proc/self/status").read_text()
    own = int(next(line.split()[1] for line in status.splitlines() if line.startswith("VmHWM:")))
    return max(own, resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss) / 2**20


def build(args) -> dict:
    from dataset_scripts.builders.synthetic import write_synthetic_corpus

    start = time.perf_counter()
    write_synthetic_corpus(args.out, args.pairs, image_size=64, num_shards=args.num_shards, num_proc=args.num_proc,
                           overwrite=True)
    size = sum(p.stat().st_size for p in Path(args.out).glob("data/*.parquet"))
    return {"seconds": time.perf_counter() - start, "disk_gib": size / 2**30}


def stream(args) -> dict:
    from train.sarclip.streaming import StreamingPairs, parquet_shards

    pairs = StreamingPairs(parquet_shards(args.data), args.batch_size)
    start, examples = time.perf_counter(), 0
    for batch in pairs:
        for example in batch:
            example["image"].load()  # decode the PNG, as the image processor would
        examples += len(batch)
    seconds = time.perf_counter() - start
    return {"seconds": seconds, "examples": examples, "examples_per_s": examples / seconds}


class NpyRows:
    """Rows of a 2-D .npy file read on demand (`rows[a:b]`): block reads, no memory map, so the features never
    count towards this process's resident memory, whatever their size."""

    def __init__(self, path: Path):
        mapped = np.load(path, mmap_mode="r")  # for the header only: shape, dtype, data offset
        self.shape, self.dtype, self.offset = mapped.shape, mapped.dtype, mapped.offset
        self.path = path

    def __len__(self) -> int:
        return self.shape[0]

    def __getitem__(self, rows: slice) -> np.ndarray:
        start, stop, _ = rows.indices(len(self))
        width = self.shape[1] * self.dtype.itemsize
        return np.fromfile(self.path, self.dtype, (stop - start) * self.shape[1], offset=self.offset + start * width
                           ).reshape(-1, self.shape[1])


def retrieval(args) -> dict:
    """Features of a model that retrieves: unit image features, and per text its image's feature + noise at cosine
    ~0.2 (random 512-d features score 0 +- 0.044, so the correct image is near the top but not always first)."""
    from train.evaluation.retrieval import retrieval_recalls_from_features

    folder = Path(tempfile.mkdtemp(prefix="bench_scale_"))
    rng = np.random.default_rng(0)
    unit = lambda x: (x / np.linalg.norm(x, axis=1, keepdims=True)).astype(np.float32)  # noqa: E731
    text_to_image = np.arange(args.texts) * args.images // args.texts
    chunk = 8192  # rows generated at a time: the generator's own memory stays small
    with open(folder / "images.npy", "wb") as f:  # plain writes, chunk by chunk: nothing mapped, nothing kept
        np.lib.format.write_array_header_1_0(f, {"descr": "<f4", "fortran_order": False,
                                                 "shape": (args.images, args.dim)})
        for start in range(0, args.images, chunk):
            unit(rng.standard_normal((min(chunk, args.images - start), args.dim), dtype=np.float32)).tofile(f)
    images = NpyRows(folder / "images.npy")
    with open(folder / "texts.npy", "wb") as f:
        np.lib.format.write_array_header_1_0(f, {"descr": "<f4", "fortran_order": False,
                                                 "shape": (args.texts, args.dim)})
        for start in range(0, args.texts, chunk):
            owners = text_to_image[start : start + chunk]
            owner_rows = images[owners[0] : owners[-1] + 1][owners - owners[0]]
            noise = unit(rng.standard_normal((len(owners), args.dim), dtype=np.float32))
            unit(0.2 * owner_rows + 0.98 * noise).tofile(f)
    start = time.perf_counter()
    results = retrieval_recalls_from_features(images, NpyRows(folder / "texts.npy"), text_to_image.tolist())
    seconds = time.perf_counter() - start
    shutil.rmtree(folder)
    return {"seconds": seconds, "mean_recall": results["mean_recall"],
            "features_gib": (args.images + args.texts) * args.dim * 4 / 2**30}


def measure(command: list[str]) -> dict:
    """Run `bench_scale.py <command>` in a fresh process; its JSON result."""
    out = subprocess.run([sys.executable, __file__, *command, "--json"], check=True, capture_output=True, text=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def table(args) -> None:
    print("| N pairs | build s | build RSS | disk | stream s (examples/s) | stream RSS | retrieval images x texts "
          "| retrieval s | retrieval RSS |")
    print("|---|---|---|---|---|---|---|---|---|")
    for pairs in args.pairs:
        out = Path(args.root) / str(pairs)
        built = measure(["build", "--pairs", str(pairs), "--out", str(out), "--num-proc", str(args.num_proc)])
        streamed = measure(["stream", "--data", str(out), "--batch-size", str(args.batch_size)])
        texts = min(pairs, args.max_retrieval_texts)
        found = measure(["retrieval", "--images", str(texts // 5), "--texts", str(texts)])
        print(f"| {pairs:,} | {built['seconds']:.0f} | {built['peak_rss_gib']:.2f} GiB | {built['disk_gib']:.2f} GiB "
              f"| {streamed['seconds']:.0f} ({streamed['examples_per_s']:.0f}) | {streamed['peak_rss_gib']:.2f} GiB "
              f"| {texts // 5:,} x {texts:,} | {found['seconds']:.0f} | {found['peak_rss_gib']:.2f} GiB |",
              flush=True)


def main(argv=None) -> None:
    parser = ArgumentParser(description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("build")
    p.add_argument("--pairs", type=int, required=True)
    p.add_argument("--out", required=True)
    p.add_argument("--num-proc", type=int, default=2)
    p.add_argument("--num-shards", type=int, default=64)
    p = sub.add_parser("stream")
    p.add_argument("--data", required=True)
    p.add_argument("--batch-size", type=int, default=256)
    p = sub.add_parser("retrieval")
    p.add_argument("--images", type=int, required=True)
    p.add_argument("--texts", type=int, required=True)
    p.add_argument("--dim", type=int, default=512)
    p = sub.add_parser("table")
    p.add_argument("--pairs", type=int, nargs="+", default=[10_000, 100_000, 1_700_000])
    p.add_argument("--root", default="/tmp/sarclip_scale")
    p.add_argument("--num-proc", type=int, default=2)
    p.add_argument("--batch-size", type=int, default=256)
    p.add_argument("--max-retrieval-texts", type=int, default=500_000)
    for p in sub.choices.values():
        p.add_argument("--json", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.command == "table":
        return table(args)
    result = {"build": build, "stream": stream, "retrieval": retrieval}[args.command](args)
    result["peak_rss_gib"] = peak_rss_gib()
    print(json.dumps(result) if args.json else result)


if __name__ == "__main__":
    sys.exit(run_cli(main))
