"""Benchmark: SARCLIP vs open_clip training throughput and peak memory, in one run.

What is compared: one training step (forward, symmetric InfoNCE, backward, AdamW) of each library's CLIP with the
same weights on the same random images and the same SAR captions (SARCLIP-1M classification templates filled with
the 10 MSTAR class words: 11-34 tokens, median 21), each library on its default text path: `open_clip.tokenize` pads
every caption to 77 tokens, SARCLIP's processor pads to the batch's longest caption (same embeddings, tested).
`--text 77` gives both sides 77 tokens (equal shapes). Ours runs as the trainer runs it, `pooled_only=True`: each
tower's last block at its pooled token alone (the same loss and gradients, tested). Optimizer: AdamW on both sides
with the same settings; ours in the trainer's fused kernel (`train.common.optim.adamw_kwargs`), open_clip in the
default implementation its training script gets (on CPU the per-parameter loop); `--same-optimizer` gives both the
default. Caption batches cycle through 4 draws (varying lengths, as in training). Steps alternate
between the two sides, so both see the same machine load; medians are reported.

    python bench/bench_sarclip_vs_open_clip.py          # the suite: on a GPU ViT-B-32 batch 256 and ViT-L-14
                                                        # batch 128 in bf16; on CPU ViT-B-32 batch 16 in fp32
    python bench/bench_sarclip_vs_open_clip.py --model RN50 --batch-size 8 --compile

Columns: samples/s of the whole training step (wall time and process CPU time, all threads: the CPU-time ratio is the
one that holds on a machine shared with other jobs) and of its forward + backward alone (the model and text levers
without the optimizer). `--threads N` pins the thread count (printed); `--json FILE` writes every number. Peak memory: on a GPU `max_memory_allocated` of one step with only that side's model and optimizer on the device;
on CPU the peak RSS of a separate process that builds the side's model and runs 2 steps.
"""

from __future__ import annotations

import sys
import argparse
import contextlib
import multiprocessing
import random
import statistics
import time
from pathlib import Path

import open_clip
import torch

from dataset_scripts.captions import ClassNameTable, classification_captions
from modeling_sarclip import OPEN_CLIP_PRESETS, SarclipConfig, SarclipTokenizer
from modeling_sarclip.convert_open_clip_to_sarclip import convert_state_dict
from modeling_sarclip.modeling_sarclip import SarclipModel
from train.common.optim import adamw_kwargs
from train.sarclip.performance import channels_last, maybe_compile
from sar_utils.command_line import ArgumentParser, run_cli

MSTAR_CLASSES = ("2S1", "BMP2", "BRDM_2", "BTR_60", "BTR70", "D7", "T62", "T72", "ZIL131", "ZSU_23_4")
GPU_SUITE = (("ViT-B-32", 256), ("ViT-L-14", 128))
CPU_SUITE = (("ViT-B-32", 16),)
CAPTION_BATCHES = 4
SIDES = ("open_clip", "sarclip")


def sar_captions(batch_size: int, seed: int = 0) -> list[list[str]]:
    """`CAPTION_BATCHES` batches of SARCLIP-1M template captions of MSTAR targets."""
    words = ClassNameTable("mstar")
    pool = [c for name in MSTAR_CLASSES for i in range(20) for c in classification_captions(words[name].singular,
                                                                                            f"{name}/{i}")]
    rng = random.Random(seed)
    return [rng.sample(pool, batch_size) for _ in range(CAPTION_BATCHES)]


def build(side: str, name: str, device: torch.device, args):
    """(model, optimizer, loss function) of one side; both sides start from the same open_clip weights."""
    torch.manual_seed(0)
    reference = open_clip.create_model(name)
    if side == "open_clip":
        model, loss_fn = reference, open_clip.ClipLoss()
        if args.grad_checkpointing:
            model.set_grad_checkpointing(True)
        if args.compile_open_clip:
            model.compile()
    else:
        model = SarclipModel(SarclipConfig.from_preset(name))
        model.load_state_dict(convert_state_dict(reference.state_dict(), model.config))
        if args.grad_checkpointing:
            model.activation_checkpointing_enable({"use_reentrant": False})
        if args.channels_last:
            channels_last(model)
        maybe_compile(model, args.compile)
        loss_fn = None
    model.to(device).train()
    fused = side == "sarclip" and not args.same_optimizer  # the trainer's AdamW; open_clip_train's is the default
    return model, torch.optim.AdamW(model.parameters(), lr=1e-5, **adamw_kwargs(device) if fused else {}), loss_fn


def batches(side: str, name: str, batch_size: int, device: torch.device, text: str):
    """[(pixels, token ids)] per caption batch, in the side's default text layout (or 77 tokens for both)."""
    size = SarclipConfig.from_preset(name).vision_config.image_size
    pixels = torch.randn(batch_size, 3, size, size, generator=torch.Generator().manual_seed(0)).to(device)
    tokenizer = SarclipTokenizer.from_bpe_file()
    out = []
    for captions in sar_captions(batch_size):
        if side == "open_clip" or text == "77":
            ids = open_clip.tokenize(captions)
        else:
            ids = tokenizer(captions, return_tensors="pt")["input_ids"]
        out.append((pixels, ids.to(device)))
    return out


def train_step(side: str, model, optimizer, loss_fn, pixels, ids, autocast, sync=lambda: None) -> float:
    """One training step; returns the seconds of its forward + backward (the rest is the optimizer step)."""
    start = time.perf_counter()
    with autocast:
        if side == "open_clip":
            loss = loss_fn(*model(pixels, ids))
        else:
            loss = model(input_ids=ids, pixel_values=pixels, return_loss=True, pooled_only=True).loss
    loss.backward()
    sync()
    forward_backward = time.perf_counter() - start
    optimizer.step()
    optimizer.zero_grad(set_to_none=True)
    return forward_backward


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize()


def _offload(model, optimizer, device) -> None:
    model.to(device)
    for state in optimizer.state.values():
        for key, value in state.items():
            if isinstance(value, torch.Tensor):
                state[key] = value.to(device)


def cpu_peak_rss(side: str, name: str, batch_size: int, args) -> float:
    """Peak RSS (GiB) of a fresh process that builds this side and runs 2 training steps."""
    device = torch.device("cpu")
    torch.set_num_threads(args.threads)
    model, optimizer, loss_fn = build(side, name, device, args)
    for pixels, ids in batches(side, name, batch_size, device, args.text)[:2]:
        train_step(side, model, optimizer, loss_fn, pixels, ids, contextlib.nullcontext())
    return peak_rss_gib()


def peak_rss_gib() -> float:
    """This process's peak RSS (VmHWM; `ru_maxrss` would include the parent's RSS at fork time, kept over exec)."""
    status = Path("/proc/self/status").read_text()
    return int(next(line.split()[1] for line in status.splitlines() if line.startswith("VmHWM:"))) / 2**20


def run(name: str, batch_size: int, device: torch.device, args) -> dict[str, dict[str, float]]:
    autocast = (torch.autocast(device.type, dtype=torch.bfloat16) if args.precision == "bf16"
                else contextlib.nullcontext())
    built = {side: build(side, name, device, args) for side in SIDES}
    data = {side: batches(side, name, batch_size, device, args.text) for side in SIDES}
    times = {side: [] for side in SIDES}
    cpu_times = {side: [] for side in SIDES}
    model_times = {side: [] for side in SIDES}
    for step in range(args.warmup + args.steps):
        for side in SIDES if step % 2 == 0 else SIDES[::-1]:  # alternate who goes first
            pixels, ids = data[side][step % CAPTION_BATCHES]
            _sync(device)
            start, cpu_start = time.perf_counter(), time.process_time()
            forward_backward = train_step(side, *built[side], pixels, ids, autocast, lambda: _sync(device))
            _sync(device)
            if step >= args.warmup:
                times[side].append(time.perf_counter() - start)
                cpu_times[side].append(time.process_time() - cpu_start)  # all threads of this process
                model_times[side].append(forward_backward)
    results = {side: {"samples_per_s": batch_size / statistics.median(times[side]),
                      "samples_per_cpu_s": batch_size / statistics.median(cpu_times[side]),
                      "model_samples_per_s": batch_size / statistics.median(model_times[side]),
                      "tokens": statistics.mean(ids.shape[1] for _, ids in data[side])} for side in SIDES}
    if device.type == "cuda":
        for side in SIDES:  # only this side's model and optimizer state on the device
            for other in SIDES:
                _offload(*built[other][:2], device if other == side else torch.device("cpu"))
            torch.cuda.empty_cache()
            torch.cuda.reset_peak_memory_stats()
            train_step(side, *built[side], *data[side][0], autocast)
            _sync(device)
            results[side]["peak_gib"] = torch.cuda.max_memory_allocated() / 2**30
    elif args.cpu_memory:
        context = multiprocessing.get_context("spawn")
        for side in SIDES:
            with context.Pool(1) as pool:
                results[side]["peak_gib"] = pool.apply(cpu_peak_rss, (side, name, batch_size, args))
    return results


def report(name: str, batch_size: int, device_name: str, args, results) -> None:
    levers = ["text at the batch's longest caption" if args.text == "default" else "77 tokens on both sides",
              "SDPA attention", "pooled-only last blocks", "same AdamW on both sides" if args.same_optimizer else "fused AdamW (ours)"] + (["channels-last"] if args.channels_last and "RN" in name else []) + (
              ["torch.compile (ours)"] if args.compile else []) + (
              ["torch.compile (open_clip)"] if args.compile_open_clip else [])
    print(f"\n{name}, batch {batch_size}, {args.precision}, {device_name}, {torch.get_num_threads()} threads, torch "
          f"{torch.__version__}, open_clip {open_clip.__version__}, {args.steps} timed steps; levers: "
          f"{', '.join(levers)}")
    memory = "peak GPU memory" if "CPU" not in device_name else "peak RSS"
    print(f"{'':10} {'train samples/s':>16} {'per CPU-second':>15} {'fwd+bwd samples/s':>18} {memory:>16} "
          f"{'text tokens':>12}")
    for side in SIDES:
        r = results[side]
        peak = f"{r['peak_gib']:.2f} GiB" if "peak_gib" in r else "n/a"
        print(f"{side:10} {r['samples_per_s']:16.2f} {r['samples_per_cpu_s']:15.2f} {r['model_samples_per_s']:18.2f} "
              f"{peak:>16} {r['tokens']:12.1f}")
    ours, theirs = results["sarclip"], results["open_clip"]
    line = (f"{'ratio':10} {ours['samples_per_s'] / theirs['samples_per_s']:15.2f}x "
            f"{ours['samples_per_cpu_s'] / theirs['samples_per_cpu_s']:14.2f}x "
            f"{ours['model_samples_per_s'] / theirs['model_samples_per_s']:17.2f}x")
    if "peak_gib" in ours:
        line += f" {ours['peak_gib'] / theirs['peak_gib']:15.2f}x"
    print(line)


def main(argv=None):
    parser = ArgumentParser(description=__doc__)
    parser.add_argument("--model", choices=sorted(OPEN_CLIP_PRESETS), help="one model (default: the suite)")
    parser.add_argument("--batch-size", type=int, help="with --model (default 16 on CPU, 256 on GPU)")
    parser.add_argument("--steps", type=int, default=10, help="timed steps per side")
    parser.add_argument("--warmup", type=int, default=3)
    parser.add_argument("--precision", choices=["fp32", "bf16"], help="default: bf16 on GPU, fp32 on CPU")
    parser.add_argument("--text", choices=["default", "77"], default="default",
                        help="default: each side's default text path; 77: both sides at 77 tokens")
    parser.add_argument("--compile", action="store_true", help="torch.compile our model (inductor)")
    parser.add_argument("--compile-open-clip", action="store_true", help="torch.compile open_clip's model too")
    parser.add_argument("--channels-last", action=argparse.BooleanOptionalAction, default=None,
                        help="channels-last ResNet tower (default: on GPU)")
    parser.add_argument("--same-optimizer", action="store_true",
                        help="default AdamW on both sides (default: ours uses the trainer's fused AdamW)")
    parser.add_argument("--grad-checkpointing", action="store_true")
    parser.add_argument("--no-cpu-memory", dest="cpu_memory", action="store_false",
                        help="skip the CPU peak-RSS processes")
    parser.add_argument("--threads", type=int, help="torch threads (default: torch's; printed with the results)")
    parser.add_argument("--json", type=Path, help="also write the results (per model and side) to this JSON file")
    args = parser.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)

    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    args.precision = args.precision or ("bf16" if device.type == "cuda" else "fp32")
    args.channels_last = device.type == "cuda" if args.channels_last is None else args.channels_last
    args.threads = torch.get_num_threads()
    suite = GPU_SUITE if device.type == "cuda" else CPU_SUITE
    if args.model:
        suite = ((args.model, args.batch_size or suite[0][1]),)
    device_name = torch.cuda.get_device_name() if device.type == "cuda" else f"CPU ({args.threads} threads)"
    records = []
    for name, batch_size in suite:
        results = run(name, batch_size, device, args)
        report(name, batch_size, device_name, args, results)
        records.append({"model": name, "batch_size": batch_size, "precision": args.precision, "device": device_name,
                        "threads": args.threads, "text": args.text, "same_optimizer": args.same_optimizer,
                        "optimizer": {"sarclip": "AdamW (default)" if args.same_optimizer else "AdamW (fused/foreach, "
                                      "the trainer's)", "open_clip": "AdamW (default)"}, "results": results})
        if device.type == "cuda":
            torch.cuda.empty_cache()
    if args.json:
        from sar_utils.atomic import write_json

        write_json(args.json, {"torch": torch.__version__, "open_clip": open_clip.__version__, "runs": records},
                   indent=2)
        print(f"results: {args.json}")


if __name__ == "__main__":
    sys.exit(run_cli(main))
