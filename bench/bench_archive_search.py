"""Archive search benchmarks: the FAISS index at scale, and search quality on real SAR chips.

    python bench/bench_archive_search.py scale [--sizes 10000,100000,1000000] [--dim 512] [--json out.json]
    python bench/bench_archive_search.py quality INDEX_DIR [--template "a SAR image of a {}."]

scale: a synthetic corpus of unit embeddings around 2,000 cluster centres in a 64-dimensional subspace (spread 1 per
axis, centres about 8 apart) plus isotropic noise (0.2 per axis): image embeddings are clustered and of low
intrinsic dimension, uniform random vectors are not a search workload. Indexed exactly as `python -m train index`
does it (the `datasets` folder written chunk by chunk, the index kind chosen by size, nprobe tuned to recall@10 >=
0.95 on the corpus's own vectors). Reported per size, each in a fresh process: build seconds, and peak RSS next to
the RSS of the process before the corpus exists (Python with torch, datasets, faiss); then, in another fresh process
that only loads the saved index: its RSS, the median and 95th percentile latency of single queries, and recall@10
against exact search on 1,000 NEW vectors from the same distribution (never in the index).

quality: every class of a labelled index (e.g. MSTAR 15 deg chips, OpenSARShip) as a text query (`--template`) over
the whole index through `ArchiveIndex.search`, mean average precision and P@10 (`train.evaluation.retrieval.
class_search_precision`).
"""

from __future__ import annotations

import os

for _variable in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_variable, "1")

import argparse  # noqa: E402
import json  # noqa: E402
import resource  # noqa: E402
import subprocess  # noqa: E402
import sys  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

CENTRES, SUBSPACE, NEW_QUERIES = 2_000, 64, 1_000
CHUNK, QUERY_SEED = 100_000, 10**6  # corpus chunks use seeds 0, 1, ...; the queries one of their own


def synthetic_embeddings(rows: int, dim: int, seed: int) -> np.ndarray:
    basis_rng = np.random.default_rng(12345)  # the same corpus distribution for every call
    basis = np.linalg.qr(basis_rng.standard_normal((dim, SUBSPACE)))[0].T.astype(np.float32)
    centres = basis_rng.standard_normal((CENTRES, SUBSPACE)).astype(np.float32)
    rng = np.random.default_rng(seed)
    low = centres[rng.integers(0, CENTRES, rows)] + rng.standard_normal((rows, SUBSPACE), np.float32)
    block = low @ basis + 0.2 * rng.standard_normal((rows, dim), np.float32)
    return block / np.linalg.norm(block, axis=1, keepdims=True)


def _rss_mib() -> float:
    with open("/proc/self/status") as status:
        return next(int(line.split()[1]) for line in status if line.startswith("VmRSS")) / 1024


def build(rows: int, dim: int, folder: Path) -> dict:
    """The corpus chunk by chunk (chunk c drawn with seed c), written and indexed as `train index` does it."""
    from train.search.build import write_items
    from train.search.faiss_index import EMBEDDING_COLUMN, EmbeddingColumn, build_faiss_index, index_factory_for, \
        set_nprobe, tune_nprobe

    baseline = _rss_mib()  # python, torch, datasets, faiss loaded

    def chunks():
        for c, start in enumerate(range(0, rows, CHUNK)):
            n = min(CHUNK, rows - start)
            meta = [dict(id=str(start + i), split=None, row=None, path=None, label=None, caption=None, scene=None,
                         window=None, footprint=None) for i in range(n)]
            yield meta, synthetic_embeddings(n, dim, seed=c)

    started = time.perf_counter()
    items = write_items(folder / "items", chunks())
    factory = index_factory_for(rows, dim)
    index = build_faiss_index(items, factory)
    nprobe, tuned = tune_nprobe(index, EmbeddingColumn(items), 10, 0.95)
    set_nprobe(index, nprobe)
    items.save_faiss_index(EMBEDDING_COLUMN, str(folder / "embedding.faiss"))
    return dict(rows=rows, factory=factory, nprobe=nprobe, tuned_recall_at_10=round(tuned, 4),
                build_seconds=round(time.perf_counter() - started, 1),
                build_peak_rss_mib=round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
                baseline_rss_mib=round(baseline, 1))


def query(rows: int, dim: int, folder: Path, nprobe: int | None) -> dict:
    import faiss

    from train.search.faiss_index import exact_top_k, recall_at_k, set_nprobe

    before = _rss_mib()
    index = faiss.read_index(str(folder / "embedding.faiss"))
    set_nprobe(index, nprobe)
    index_rss = _rss_mib() - before
    queries = synthetic_embeddings(NEW_QUERIES, dim, seed=QUERY_SEED)
    latencies = []
    for q in queries[:200]:
        start = time.perf_counter()
        index.search(q[None], 10)
        latencies.append(time.perf_counter() - start)
    found = index.search(queries, 10)[1]
    import datasets

    from train.search.faiss_index import EmbeddingColumn

    exact = exact_top_k(EmbeddingColumn(datasets.load_from_disk(str(folder / "items"))), queries, 10)
    return dict(index_rss_mib=round(index_rss, 1), index_file_mib=round((folder / "embedding.faiss").stat().st_size
                                                                         / 2**20, 1),
                query_ms_p50=round(1000 * float(np.median(latencies)), 3),
                query_ms_p95=round(1000 * float(np.percentile(latencies, 95)), 3),
                recall_at_10_new_queries=round(recall_at_k(found, exact), 4))


def scale(args) -> None:
    results = []
    for rows in [int(size) for size in args.sizes.split(",")]:
        with tempfile.TemporaryDirectory(dir=args.workdir) as folder:
            built = _child("build", rows, args.dim, folder)
            queried = _child("query", rows, args.dim, folder, built["nprobe"])
            results.append({**built, **queried})
            print(json.dumps(results[-1]), flush=True)
    header = ("rows", "factory", "nprobe", "build_seconds", "baseline_rss_mib", "build_peak_rss_mib", "index_rss_mib",
              "query_ms_p50", "query_ms_p95", "recall_at_10_new_queries")
    print("| " + " | ".join(header) + " |\n|" + "---|" * len(header))
    for result in results:
        print("| " + " | ".join(str(result[key]) for key in header) + " |")
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=2))


def _child(step: str, rows: int, dim: int, folder: str, nprobe=None) -> dict:
    out = subprocess.run([sys.executable, __file__, "_" + step, str(rows), str(dim), folder, json.dumps(nprobe)],
                         capture_output=True, text=True)
    if out.returncode:
        raise RuntimeError(f"{step} {rows}: {out.stderr[-2000:]}")
    return json.loads(out.stdout.strip().splitlines()[-1])


def quality(args) -> None:
    from train.evaluation.retrieval import class_search_precision
    from train.search import ArchiveIndex

    archive = ArchiveIndex(args.index_dir)
    labels = archive.items["label"]
    words = archive.manifest["class_words"]  # label -> caption words, as the model's training spelled them
    classes = sorted(words)
    if len(classes) < 2:
        raise SystemExit(f"error: {args.index_dir}: the index has no labels of two classes or more")
    ids = {item: row for row, item in enumerate(archive.items["id"])}
    scores = np.full((len(archive), len(classes)), -np.inf, np.float32)
    for c, name in enumerate(classes):
        for hit in archive.search(args.template.format(words[name]), k=len(archive)):
            scores[ids[hit["id"]], c] = hit["score"]
    truth = [classes.index(label) if label in classes else -1 for label in labels]
    result = {"index": str(args.index_dir), "images": len(archive), "classes": len(classes),
              "template": args.template, **class_search_precision(scores, truth)}
    print(json.dumps(result, indent=2))


def main() -> None:
    if len(sys.argv) > 1 and sys.argv[1] in ("_build", "_query"):
        step, rows, dim, folder, nprobe = sys.argv[1:]
        result = build(int(rows), int(dim), Path(folder)) if step == "_build" else \
            query(int(rows), int(dim), Path(folder), json.loads(nprobe))
        print(json.dumps(result))
        return
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    commands = parser.add_subparsers(dest="command", required=True)
    scale_parser = commands.add_parser("scale", formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    scale_parser.add_argument("--sizes", default="10000,100000,1000000", help="corpus sizes")
    scale_parser.add_argument("--dim", type=int, default=512, help="embedding dimension (ViT-B: 512)")
    scale_parser.add_argument("--workdir", default=None, help="where the temporary index folders go")
    scale_parser.add_argument("--json", default=None, help="also write the results here")
    quality_parser = commands.add_parser("quality", formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    quality_parser.add_argument("index_dir", type=Path, help="an index built with `python -m train index`")
    quality_parser.add_argument("--template", default="a SAR image of a {}.", help="class prompt")
    args = parser.parse_args()
    scale(args) if args.command == "scale" else quality(args)


if __name__ == "__main__":
    main()
