"""The `index` and `search` sub-commands of `python -m train` (see `train.search`)."""

from __future__ import annotations

import argparse
from pathlib import Path

from .build import COMPILE_PAYS_FROM_VIT_B32_IMAGES, IndexSettings

DEFAULTS = IndexSettings()


def add_search_commands(commands) -> None:
    index = commands.add_parser(
        "index", help="embed an archive (chips or GeoTIFF scenes) into a searchable FAISS index",
        description="Embed every chip of DATA, or every SRC tile of GeoTIFF scenes, with MODEL and write a searchable "
                    "index folder (a datasets folder, a FAISS index, a manifest). Resumable: rerun the same command "
                    "after a kill.", formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    index.add_argument("model", help="SARCLIP model: a run's final/ folder, a LoRA folder, an exported CLIPModel "
                                     "folder or a Hub repo id")
    index.add_argument("data", help="anything --data takes ('synthetic', a folder of labelled chips, a caption or "
                                    "label table, a built dataset folder, a Hub dataset id), or a GeoTIFF scene or a "
                                    "folder of GeoTIFF scenes")
    index.add_argument("--out", type=Path, required=True, help="index folder to write")
    index.add_argument("--split", default=None, help="comma-separated splits to index (default: all)")
    index.add_argument("--batch-size", type=int, default=DEFAULTS.batch_size, help="images per forward pass")
    index.add_argument("--tile-side-m", type=float, default=DEFAULTS.tile_side_m,
                       help="GeoTIFF scenes: tile side in metres (SAR-GEOVL SRC tiling)")
    index.add_argument("--min-valid", type=float, default=DEFAULTS.min_valid,
                       help="GeoTIFF scenes: least fraction of valid (finite, not nodata) pixels of a kept tile")
    index.add_argument("--index-factory", default=DEFAULTS.index_factory,
                       help="faiss index_factory string (e.g. Flat, IVF1024,SQ8, HNSW32,Flat); auto: by size")
    index.add_argument("--target-recall", type=float, default=DEFAULTS.target_recall,
                       help="recall@10 against exact search that the tuned nprobe must reach")
    index.add_argument("--chunk-rows", type=int, default=DEFAULTS.chunk_rows,
                       help="rows per resumable embedding chunk")
    index.add_argument("--precision", choices=("fp32", "bf16"), default=DEFAULTS.precision,
                       help="embedding precision: bf16 autocast is about 4x faster on CPUs with bf16 units (ViT-B-32, "
                            "bench/bench_inference_vs_open_clip.py), with the same hits on MSTAR (docs/RESULTS.md)")
    index.add_argument("--compile", choices=("auto", "true", "false"), default=DEFAULTS.compile,
                       help="compile the image tower with frozen weights for embedding (about 10 %% faster on CPU "
                            "after a one-off of about 15 s per batch shape); auto: ViT towers, from the work of "
                            f"{COMPILE_PAYS_FROM_VIT_B32_IMAGES:,} ViT-B-32 images, where a C++ compiler is found")
    index.add_argument("--overwrite", action="store_true", help="replace an existing index at --out")

    search = commands.add_parser(
        "search", help="find the archive tiles that match a text, a SAR image, or both",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    search.add_argument("index_dir", type=Path, help="an index folder written by `python -m train index`")
    search.add_argument("query", nargs="?", default=None, help="text query, e.g. \"two ships near a breakwater\"")
    search.add_argument("--image", default=None, help="query SAR image (chip or GeoTIFF); with a text: both")
    search.add_argument("--k", type=int, default=20, help="number of hits")
    search.add_argument("--model", default=None, help="model to embed the query (default: the index's; it must be "
                                                      "the same model, e.g. a copy or its Hub repo)")
    search.add_argument("--nprobe", type=int, default=None, help="IVF lists visited (default: the index's tuned one)")
    search.add_argument("--out", type=Path, default=None,
                        help="results folder: hits.json, contact_sheet.png, footprints.geojson (GeoTIFF tiles)")
    search.add_argument("--overwrite", action="store_true", help="replace an existing results folder")


def run_search_command(args: argparse.Namespace) -> int:
    if args.command == "index":
        from .build import build_index

        settings = IndexSettings(
            splits=args.split.split(",") if args.split else None, batch_size=args.batch_size,
            tile_side_m=args.tile_side_m, min_valid=args.min_valid, index_factory=args.index_factory,
            target_recall=args.target_recall, chunk_rows=args.chunk_rows, precision=args.precision,
            compile=args.compile)
        out = build_index(args.model, args.data, args.out, settings, overwrite=args.overwrite)
        print(f"index: {out} (python -m train search {out} \"a SAR image of a ship\")")
        return 0
    from .archive import ArchiveIndex
    from .results import write_results

    if not (args.query or "").strip() and args.image is None:
        raise ValueError("empty query: give a text query, --image FILE, or both")
    if args.out is not None and args.out.exists() and not args.overwrite:
        raise FileExistsError(f"{args.out}: exists; pass --overwrite to replace it, or choose another --out")
    archive = ArchiveIndex(args.index_dir, args.model)
    hits = archive.search(args.query, args.image, args.k, args.nprobe)
    for hit in hits:
        where = hit["footprint"] and "lon/lat " + " ".join(f"{v:.5f}" for v in hit["footprint"])
        print(f"{hit['rank']:>3}  {hit['score']:.4f}  {hit['id']}  {hit['label'] or ''}  {where or hit['path'] or ''}")
    if args.out is not None:
        thumbnails = [archive.render(hit) for hit in hits]
        write_results(args.out, {"text": args.query, "image": args.image, "k": args.k}, hits, thumbnails)
        print(f"results: {args.out}")
    return 0

