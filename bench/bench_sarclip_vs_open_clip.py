"""Benchmark: SARCLIP vs open_clip at equal shapes and equal weights, in one run.

Times a full training step (forward, symmetric InfoNCE loss, backward, AdamW step) and image encoding (no grad) and
prints samples/s, peak GPU memory and our/open_clip ratios. On a GPU the default is bf16 autocast; on CPU fp32.

    python bench/bench_sarclip_vs_open_clip.py --model ViT-B-32 --batch-size 256          # GPU
    python bench/bench_sarclip_vs_open_clip.py --model ViT-B-32 --batch-size 16 --steps 3 # CPU smoke run
"""

from __future__ import annotations

import argparse
import contextlib
import time

import open_clip
import torch

from modeling_sarclip import OPEN_CLIP_PRESETS, SarclipConfig
from modeling_sarclip.convert_open_clip_to_sarclip import convert_state_dict
from modeling_sarclip.modeling_sarclip import SarclipModel


def _models(name: str, device: torch.device):
    torch.manual_seed(0)
    reference = open_clip.create_model(name)
    ours = SarclipModel(SarclipConfig.from_preset(name))
    ours.load_state_dict(convert_state_dict(reference.state_dict(), ours.config))
    return reference.to(device), ours.to(device)


def _batch(config: SarclipConfig, batch_size: int, device: torch.device):
    generator = torch.Generator().manual_seed(0)
    size = config.vision_config.image_size
    pixels = torch.randn(batch_size, 3, size, size, generator=generator)
    ids = torch.randint(1, 49406, (batch_size, 77), generator=generator)
    lengths = torch.randint(5, 77, (batch_size,), generator=generator)
    ids[:, 0] = 49406
    ids[torch.arange(batch_size), lengths] = 49407  # end-of-text token at a random position, padding after it
    ids[torch.arange(77) > lengths[:, None]] = 0
    return pixels.to(device), ids.to(device)


def _open_clip_loss(model, pixels, ids, loss_fn):
    image, text, scale = model(pixels, ids)
    return loss_fn(image, text, scale)


def _sarclip_loss(model, pixels, ids, _):
    return model(input_ids=ids, pixel_values=pixels, return_loss=True).loss


def _sync(device):
    if device.type == "cuda":
        torch.cuda.synchronize()


def _measure(step, device, steps: int, warmup: int) -> tuple[float, float | None]:
    """Seconds per step (median over `steps`) and peak GPU memory in GiB (None on CPU)."""
    for _ in range(warmup):
        step()
    _sync(device)
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats()
    times = []
    for _ in range(steps):
        start = time.perf_counter()
        step()
        _sync(device)
        times.append(time.perf_counter() - start)
    peak = torch.cuda.max_memory_allocated() / 2**30 if device.type == "cuda" else None
    return sorted(times)[len(times) // 2], peak


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default="ViT-B-32", choices=sorted(OPEN_CLIP_PRESETS))
    parser.add_argument("--batch-size", type=int, default=256)
    parser.add_argument("--steps", type=int, default=10)
    parser.add_argument("--warmup", type=int, default=3)
    parser.add_argument("--precision", choices=["fp32", "bf16"], help="default: bf16 on GPU, fp32 on CPU")
    parser.add_argument("--grad-checkpointing", action="store_true")
    args = parser.parse_args(argv)

    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    precision = args.precision or ("bf16" if device.type == "cuda" else "fp32")
    autocast = (torch.autocast(device.type, dtype=torch.bfloat16) if precision == "bf16"
                else contextlib.nullcontext())
    reference, ours = _models(args.model, device)
    if args.grad_checkpointing:
        reference.set_grad_checkpointing(True)
        ours.activation_checkpointing_enable({"use_reentrant": False})
    pixels, ids = _batch(ours.config, args.batch_size, device)
    loss_fn = open_clip.ClipLoss()

    results = {}
    for label, model, loss in (("open_clip", reference, _open_clip_loss), ("sarclip", ours, _sarclip_loss)):
        optimizer = torch.optim.AdamW(model.parameters(), lr=1e-5)

        def train_step():
            with autocast:
                value = loss(model, pixels, ids, loss_fn)
            value.backward()
            optimizer.step()
            optimizer.zero_grad(set_to_none=True)

        encode = reference.encode_image if label == "open_clip" else ours.get_image_features

        @torch.no_grad()
        def encode_step():
            with autocast:
                encode(pixels)

        model.train()
        train_time, train_peak = _measure(train_step, device, args.steps, args.warmup)
        model.eval()
        encode_time, encode_peak = _measure(encode_step, device, args.steps, args.warmup)
        results[label] = (args.batch_size / train_time, train_peak, args.batch_size / encode_time, encode_peak)
        del optimizer
        if device.type == "cuda":
            torch.cuda.empty_cache()

    name = torch.cuda.get_device_name() if device.type == "cuda" else f"CPU ({torch.get_num_threads()} threads)"
    print(f"{args.model}, batch {args.batch_size}, {precision}, {name}, torch {torch.__version__}, "
          f"open_clip {open_clip.__version__}, grad checkpointing {args.grad_checkpointing}")
    gib = lambda v: "n/a" if v is None else f"{v:.2f} GiB"  # noqa: E731
    print(f"{'':10} {'train samples/s':>16} {'train peak':>11} {'encode images/s':>16} {'encode peak':>12}")
    for label, (train, train_peak, encode, encode_peak) in results.items():
        print(f"{label:10} {train:16.1f} {gib(train_peak):>11} {encode:16.1f} {gib(encode_peak):>12}")
    ratio_train = results["sarclip"][0] / results["open_clip"][0]
    ratio_encode = results["sarclip"][2] / results["open_clip"][2]
    print(f"{'ratio':10} {ratio_train:15.2f}x {'':>11} {ratio_encode:15.2f}x")


if __name__ == "__main__":
    main()
