"""Benchmark: image-embedding throughput, SARCLIP vs open_clip (the path `python -m train index` takes).

    python bench/bench_inference_vs_open_clip.py [--model ViT-B-32] [--batch-sizes 64,256] [--precisions fp32,bf16]
                                                 [--files 256] [--threads 2] [--no-compile] [--compile-open-clip]
                                                 [--json out.json]

Two measurements, both sides with the same open_clip weights (converted in-process), interleaved pass by pass so
that both see the same machine load; medians of `--repeats` passes after one warm-up pass (which compiles); images/s
in wall time and in process CPU time (all threads: the ratio that holds on a shared machine). Ours runs as `python -m
train index` runs it on a large archive (`--compile auto`): `get_image_features(pooled_only=True)` (the last block at
the class token) with the image tower compiled with frozen weights (`performance.compile_image_tower_for_inference`;
`--no-compile`: eager); open_clip as its users call it, eager `encode_image` (`--compile-open-clip`: the same frozen
compile, like for like).
- model: `SarclipModel.get_image_features` vs open_clip `encode_image` on the same random pixels, per batch size and
  precision (bf16: CPU autocast on both sides);
- end to end from files: `--files` real chips (default: MSTAR SOC 15 deg test JPEGs under $SAR_DATA_DIR, else
  ../shared/data) through a DataLoader: ours reads each file with the SARCLIP processor (SAR radiometry, resize,
  centre crop), open_clip opens it with PIL and applies its own torchvision eval transforms; then the encoder, in
  each precision, batch = the first batch size.
Peak RSS: of a fresh process per side that builds only that side's model and embeds two batches of the first size
(fp32); `--no-memory` skips it.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import statistics
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import open_clip  # noqa: E402
from PIL import Image  # noqa: E402
from torch.utils.data import DataLoader  # noqa: E402

from modeling_sarclip import SarclipConfig, SarclipImageProcessor  # noqa: E402
from modeling_sarclip.convert_open_clip_to_sarclip import convert_state_dict  # noqa: E402
from modeling_sarclip.modeling_sarclip import SarclipModel  # noqa: E402
from train.sarclip.performance import compile_frozen, compile_image_tower_for_inference  # noqa: E402

from bench_sarclip_vs_open_clip import peak_rss_gib  # noqa: E402  (this folder)

SIDES = ("open_clip", "sarclip")


def build(name: str, compile_ours: bool, compile_open_clip: bool):
    torch.manual_seed(0)
    reference, _, preprocess = open_clip.create_model_and_transforms(name)
    ours = SarclipModel(SarclipConfig.from_preset(name))
    ours.load_state_dict(convert_state_dict(reference.state_dict(), ours.config))
    if compile_ours:
        compile_image_tower_for_inference(ours)
    if compile_open_clip:
        compile_frozen(reference.visual)
    return {"open_clip": reference.eval(), "sarclip": ours.eval()}, preprocess


def side_peak_rss(side: str, name: str, batch: int, compiled: bool, threads: int) -> float:
    """Peak RSS (GiB) of this (fresh) process after building one side's model and embedding two batches."""
    torch.set_num_threads(threads)
    if side == "open_clip":
        model = open_clip.create_model(name).eval()
        if compiled:
            compile_frozen(model.visual)
    else:
        model = SarclipModel(SarclipConfig.from_preset(name)).eval()
        if compiled:
            compile_image_tower_for_inference(model)
    size = SarclipConfig.from_preset(name).vision_config.image_size
    pixels = torch.randn(batch, 3, size, size)
    for _ in range(2):
        encode(side, model, pixels, "fp32")
    return peak_rss_gib()


def encode(side: str, model, pixels: torch.Tensor, precision: str) -> torch.Tensor:
    with torch.no_grad(), torch.autocast("cpu", dtype=torch.bfloat16, enabled=precision == "bf16"):
        if side == "open_clip":
            return model.encode_image(pixels)
        return model.get_image_features(pixel_values=pixels, pooled_only=True).pooler_output


def timed(function) -> tuple[float, float]:
    wall, cpu = time.perf_counter(), time.process_time()
    function()
    return time.perf_counter() - wall, time.process_time() - cpu


def model_only(models, size: int, batch: int, precision: str, repeats: int) -> dict:
    pixels = torch.randn(batch, 3, size, size, generator=torch.Generator().manual_seed(0))
    times = {side: [] for side in SIDES}
    for side in SIDES:  # warm-up (and compile)
        encode(side, models[side], pixels, precision)
    for _ in range(repeats):
        for side in SIDES:
            times[side].append(timed(lambda: encode(side, models[side], pixels, precision)))
    return _rates(times, batch)


class _OpenClipFiles(torch.utils.data.Dataset):
    def __init__(self, files, preprocess):
        self.files, self.preprocess = files, preprocess

    def __len__(self):
        return len(self.files)

    def __getitem__(self, i):
        return self.preprocess(Image.open(self.files[i]).convert("RGB"))


def end_to_end(models, preprocess, files: list[Path], size: int, batch: int, precision: str, repeats: int,
               workers: int) -> dict:
    processor = SarclipImageProcessor(size=size)
    loaders = {
        "open_clip": DataLoader(_OpenClipFiles(files, preprocess), batch_size=batch, num_workers=workers),
        "sarclip": DataLoader([str(f) for f in files], batch_size=batch, num_workers=workers,
                              collate_fn=lambda paths: processor(images=list(paths))["pixel_values"]),
    }

    def run(side):
        for pixels in loaders[side]:
            encode(side, models[side], pixels, precision)

    times = {side: [] for side in SIDES}
    for side in SIDES:  # warm-up (a last batch of another size compiles here)
        run(side)
    for _ in range(repeats):
        for side in SIDES:
            times[side].append(timed(lambda: run(side)))
    return _rates(times, len(files))


def _rates(times: dict, images: int) -> dict:
    out = {}
    for side, samples in times.items():
        wall = statistics.median(t[0] for t in samples)
        cpu = statistics.median(t[1] for t in samples)
        out[side] = {"images_per_s": images / wall, "images_per_cpu_s": images / cpu}
    out["ratio_wall"] = out["sarclip"]["images_per_s"] / out["open_clip"]["images_per_s"]
    out["ratio_cpu"] = out["sarclip"]["images_per_cpu_s"] / out["open_clip"]["images_per_cpu_s"]
    return out


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default="ViT-B-32", help="open_clip model name (default: ViT-B-32)")
    parser.add_argument("--batch-sizes", default="64,256", help="model-only batch sizes (default: 64,256)")
    parser.add_argument("--precisions", default="fp32,bf16", help="fp32 and/or bf16 (default: fp32,bf16)")
    parser.add_argument("--files", type=int, default=256, help="chips for the end-to-end pass (default: 256; 0: skip)")
    parser.add_argument("--data", default=None, help="folder of chips (default: MSTAR SOC test under the data dir)")
    parser.add_argument("--workers", type=int, default=0, help="DataLoader workers (default: 0)")
    parser.add_argument("--repeats", type=int, default=3, help="timed passes per side (default: 3)")
    parser.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's)")
    parser.add_argument("--no-compile", dest="compile", action="store_false",
                        help="run our image tower eager (default: compiled with frozen weights, as `train index`)")
    parser.add_argument("--compile-open-clip", action="store_true",
                        help="compile open_clip's image tower the same way (default: eager, as its users run it)")
    parser.add_argument("--no-memory", dest="memory", action="store_false",
                        help="skip the peak-RSS processes (default: measure them)")
    parser.add_argument("--json", default=None, help="also write the results here (default: none)")
    args = parser.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    models, preprocess = build(args.model, args.compile, args.compile_open_clip)
    size = models["sarclip"].config.vision_config.image_size
    results = {"model": args.model, "threads": torch.get_num_threads(), "date": time.strftime("%Y-%m-%d"),
               "torch": torch.__version__, "open_clip": open_clip.__version__,
               "sarclip": "pooled_only" + (", compiled (frozen weights)" if args.compile else ", eager"),
               "open_clip_path": "encode_image" + (", compiled (frozen weights)" if args.compile_open_clip
                                                   else ", eager"),
               "model_only": {}, "end_to_end": None}
    print(f"{args.model}, {results['threads']} threads; SARCLIP: {results['sarclip']}; open_clip: "
          f"{results['open_clip_path']}")
    for precision in args.precisions.split(","):
        for batch in map(int, args.batch_sizes.split(",")):
            result = model_only(models, size, batch, precision, args.repeats)
            results["model_only"][f"{precision}_b{batch}"] = result
            print(f"model only, {precision}, batch {batch}: open_clip {result['open_clip']['images_per_s']:.1f} img/s, "
                  f"sarclip {result['sarclip']['images_per_s']:.1f} img/s: {result['ratio_wall']:.2f}x wall, "
                  f"{result['ratio_cpu']:.2f}x CPU time", flush=True)
    if args.files:
        root = Path(args.data) if args.data else Path(os.environ.get(
            "SAR_DATA_DIR", Path(__file__).resolve().parents[2] / "shared" / "data")) / "mstar_soc" / "test"
        files = sorted(p for p in root.rglob("*") if p.suffix.lower() in (".jpeg", ".jpg", ".png", ".tif"))[
            : args.files]
        if not files:
            raise SystemExit(f"error: no chips under {root}; pass --data FOLDER")
        batch = int(args.batch_sizes.split(",")[0])
        results["end_to_end"] = {"files": len(files), "batch": batch}
        for precision in args.precisions.split(","):
            result = end_to_end(models, preprocess, files, size, batch, precision, args.repeats, args.workers)
            results["end_to_end"][precision] = result
            print(f"end to end from {len(files)} files ({root}), {precision}, batch {batch}: open_clip "
                  f"{result['open_clip']['images_per_s']:.1f} img/s, sarclip {result['sarclip']['images_per_s']:.1f} "
                  f"img/s: {result['ratio_wall']:.2f}x wall, {result['ratio_cpu']:.2f}x CPU time", flush=True)
    if args.memory:
        batch = int(args.batch_sizes.split(",")[0])
        compiled = {"sarclip": args.compile, "open_clip": args.compile_open_clip}
        context = multiprocessing.get_context("spawn")
        peaks = {}
        for side in SIDES:
            with context.Pool(1) as pool:
                peaks[side] = pool.apply(side_peak_rss, (side, args.model, batch, compiled[side], results["threads"]))
        results["peak_rss_gib"] = {"batch": batch, **peaks, "ratio": peaks["sarclip"] / peaks["open_clip"]}
        print(f"peak RSS, fp32, batch {batch}: open_clip {peaks['open_clip']:.2f} GiB, sarclip {peaks['sarclip']:.2f} "
              f"GiB: {peaks['sarclip'] / peaks['open_clip']:.2f}x")
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
