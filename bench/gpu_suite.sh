#!/usr/bin/env bash
# The GPU part of the SARCLIP vs open_clip benchmark, ready to run on a machine with one GPU (none was lent to the
# task that wrote it). About 5 minutes on an H200. Prints, per run, train samples/s and peak GPU memory of both sides:
#  1. the suite: ViT-B-32 batch 256 and ViT-L-14 batch 128, bf16, each side's default text path and optimizer;
#  2. the same with the same (default) AdamW on both sides: the model and text-length levers alone;
#  3. ViT-B-32 batch 256 with torch.compile on both sides: the compile lever.
set -euo pipefail
cd "$(dirname "$0")/.."
nvidia-smi --query-gpu=name,memory.total --format=csv,noheader
python bench/bench_sarclip_vs_open_clip.py --steps 10 --warmup 3
python bench/bench_sarclip_vs_open_clip.py --steps 10 --warmup 3 --same-optimizer
python bench/bench_sarclip_vs_open_clip.py --model ViT-B-32 --batch-size 256 --steps 10 --warmup 6 --compile --compile-open-clip
