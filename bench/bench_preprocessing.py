"""Benchmark: SAR image preprocessing per CPU core, the SARCLIP image processor vs minimal paths at equal output.

One thread (torch, and numpy/PIL run single-threaded here), batches of 32 files per call as the training collator
makes them, rounds alternating between the paths (the same machine load), median images/s:

- dual-pol float dB GeoTIFF, 224 x 224 (../shared/data/sarclip_examples/example.tif; no resize): ours vs tifffile +
  numpy with the official recipe;
- MSTAR JPEG chips (158-193 px, resized to 224): ours vs PIL decode + x / 255 + the same bicubic resize, clamp and
  crop (equal output), and vs decode + scale alone (no resize: not the same output, a floor for any path);
- reference: transformers' CLIPImageProcessor on the same chips as 8-bit PNG (its own RGB recipe, not comparable
  values).

    python bench/bench_preprocessing.py [--data ../shared/data] [--rounds 7]
"""

from __future__ import annotations

import sys
import io
import statistics
import time
from pathlib import Path

import numpy as np
import tifffile
import torch
import torch.nn.functional as F
from PIL import Image

from modeling_sarclip import SarclipImageProcessor
from sar_utils.command_line import ArgumentParser, run_cli

BATCH = 32


def minimal_dual_pol(paths: list[str]) -> torch.Tensor:
    """tifffile + numpy: the official float dB dual-pol recipe, channels first, [-1, 1]."""
    out = []
    for path in paths:
        db = tifffile.imread(path)
        vv = np.minimum((db[:, :, 0] + 25.0) / 25.0, 1.0)
        vh = np.minimum((db[:, :, 1] + 32.5) / 25.0, 1.0)
        out.append(torch.from_numpy((np.stack([vv, vh, (vv + vh) / 2]) - 0.5) * 2))
    return torch.stack(out)


def decode_scale(paths: list[str], size: int | None) -> torch.Tensor:
    """PIL decode + x / 255, and with `size` the processor's resize (shortest edge, bicubic antialias, clamp, centre
    crop) on the one band, then [-1, 1] and 3 channels."""
    out = []
    for path in paths:
        with Image.open(path) as image:
            unit = torch.from_numpy((np.asarray(image) / 255.0).astype(np.float32))[None]
        if size is not None:
            height, width = unit.shape[1:]
            scale = size / min(height, width)
            new_h, new_w = max(size, round(height * scale)), max(size, round(width * scale))
            resized = F.interpolate(unit[None], (new_h, new_w), mode="bicubic", antialias=True)[0]
            top, left = (new_h - size) // 2, (new_w - size) // 2
            unit = resized[:, top : top + size, left : left + size].clamp(unit.min(), unit.max())
        out.append(((unit - 0.5) * 2).expand(3, -1, -1))
    return torch.stack(out)


def clip_reference(paths: list[str]):
    from transformers import CLIPImageProcessor

    processor = CLIPImageProcessor()  # resize 224 bicubic, centre crop 224, rescale, CLIP mean/std

    def run(pngs: list[bytes]) -> torch.Tensor:
        return processor([Image.open(io.BytesIO(png)).convert("RGB") for png in pngs],
                         return_tensors="pt")["pixel_values"]

    pngs = []
    for path in paths:
        buffer = io.BytesIO()
        Image.open(path).save(buffer, format="PNG")
        pngs.append(buffer.getvalue())
    return run, pngs


def race(paths_by_name: dict[str, tuple], rounds: int) -> dict[str, float]:
    """Median images/s of each (function, inputs) over `rounds` alternating rounds (after one warm-up round)."""
    times = {name: [] for name in paths_by_name}
    for round_ in range(rounds + 1):
        for name, (function, inputs) in paths_by_name.items():
            start = time.perf_counter()
            for i in range(0, len(inputs), BATCH):
                function(inputs[i : i + BATCH])
            if round_:
                times[name].append(len(inputs) / (time.perf_counter() - start))
    return {name: statistics.median(values) for name, values in times.items()}


def main(argv=None) -> None:
    parser = ArgumentParser(description=__doc__)
    parser.add_argument("--data", type=Path, default=Path(__file__).resolve().parents[2] / "shared" / "data")
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--chips", type=int, default=256, help="MSTAR chips per round")
    args = parser.parse_args(argv)
    torch.set_num_threads(1)
    processor = SarclipImageProcessor()
    ours = lambda paths: processor(images=paths)["pixel_values"]  # noqa: E731

    tif = [str(args.data / "sarclip_examples" / "example.tif")] * 128
    assert torch.equal(ours(tif[:1]), minimal_dual_pol(tif[:1])), "dual-pol outputs differ"
    chips = sorted(str(p) for p in (args.data / "mstar_soc").glob("*/*/*.jpeg"))[: args.chips]
    assert torch.equal(ours(chips[:BATCH]), decode_scale(chips[:BATCH], 224)), "MSTAR outputs differ"
    clip_run, pngs = clip_reference(chips)
    sizes = sorted({Image.open(p).size for p in chips})

    print(f"images/s on one core (torch {torch.get_num_threads()} thread), batches of {BATCH}, median of "
          f"{args.rounds} alternating rounds")
    rates = race({"ours": (ours, tif), "minimal": (minimal_dual_pol, tif)}, args.rounds)
    print(f"dual-pol float dB GeoTIFF 224x224: SARCLIP processor {rates['ours']:.0f}, tifffile + numpy recipe "
          f"{rates['minimal']:.0f} (equal output): {rates['ours'] / rates['minimal']:.2f}x")
    rates = race({"ours": (ours, chips), "minimal": (lambda p: decode_scale(p, 224), chips),
                  "floor": (lambda p: decode_scale(p, None), chips), "clip": (clip_run, pngs)}, args.rounds)
    print(f"MSTAR JPEG chips {sizes[0]}..{sizes[-1]} -> 224: SARCLIP processor {rates['ours']:.0f}, PIL + numpy + "
          f"the same resize {rates['minimal']:.0f} (equal output): {rates['ours'] / rates['minimal']:.2f}x; "
          f"decode + scale alone (no resize) {rates['floor']:.0f}; transformers CLIPImageProcessor on the same "
          f"chips as PNG {rates['clip']:.0f}")


if __name__ == "__main__":
    sys.exit(run_cli(main))
