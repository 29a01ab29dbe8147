"""Supervised reference for the VQA "target position" questions on HRSID: what a small CNN trained directly on the
nine region labels reaches on the same images, split and CPU, beside SAR-KnowLIP's VQA numbers (docs/RESULTS.md).

    python -m dataset_scripts.geovl vqa --data-dir ../shared/data --out /tmp/vqa8 --mstar-per-class 20 --train-views 8
    python bench/bench_vqa_position_reference.py --data /tmp/vqa8 [--size 64] [--epochs 60] [--seeds 3]
        [--knowlip-model MODEL_DIR]

Each HRSID image has one position question ("In which region(s) are the ships located?"); its answer, the set of
3 x 3 grid regions holding a ship's box centre, becomes nine binary labels. The images are resized to --size pixels
and standardised each by its own mean and std; four conv-BN-ReLU blocks keep the spatial map, which is pooled to
the 3 x 3 grid and scored per region (binary cross-entropy); AdamW lr 2e-3, wd 0.05, one-cycle, batch 16, one
thread. A region counts as predicted at probability > 0.5. Prints the share of test questions answered exactly
(the VQA metric), the per-region F1, and the majority-answer prior of the same questions.

--knowlip-model also asks whether a SAR-KnowLIP image tower holds the answer: its frozen patch tokens, max-pooled per
grid region (and standardised), are scored by one linear layer shared by the nine regions, trained the same way.
"""

from __future__ import annotations

import os

for _variable in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ[_variable] = "1"

import sys  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402
import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402
from torch import nn  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from bench.reference_cnn import conv_block, train_one_cycle  # noqa: E402
from dataset_scripts.geovl.vqa_sets import TASK_POSITION, load_vqa_sets  # noqa: E402
from sar_utils.command_line import ArgumentParser, run_cli  # noqa: E402
from train.evaluation.vqa import majority_answer_accuracy  # noqa: E402


def position_questions(split, size: int) -> tuple[torch.Tensor, torch.Tensor, list[str]]:
    """(N, 1, size, size) standardised HRSID images, (N, 9) region labels, the N answers."""
    rows = split.filter(lambda r: r["task_type"] == TASK_POSITION and r["dataset"] == "hrsid")
    pixels, labels = [], []
    for image, answer in zip(rows["image"], rows["answer"]):
        array = torch.from_numpy(np.asarray(image.convert("L"), dtype=np.float32) / 255.0)[None, None]
        chip = F.interpolate(array, size=(size, size), mode="bilinear", antialias=True, align_corners=False)[0]
        pixels.append((chip - chip.mean()) / (chip.std() + 1e-6))
        target = torch.zeros(9)
        target[[int(region) - 1 for region in answer.split(", ")]] = 1
        labels.append(target)
    return torch.stack(pixels), torch.stack(labels), list(rows["answer"])


def network() -> nn.Module:
    # the 3 x 3 pooled map, one score per region: a region's logit sees that region's features
    return nn.Sequential(conv_block(1, 16), conv_block(16, 32), conv_block(32, 64), conv_block(64, 64),
                         nn.AdaptiveMaxPool2d(3), nn.Conv2d(64, 1, 1), nn.Flatten())


def knowlip_region_tokens(model_dir: Path, split) -> torch.Tensor:
    """(N, 9, D) a SAR-KnowLIP ViT's patch tokens of the HRSID position images, max-pooled per 3 x 3 grid region."""
    from modeling_knowlip import SarKnowlipModel, SarKnowlipProcessor

    model, processor = SarKnowlipModel.from_pretrained(model_dir).eval(), SarKnowlipProcessor.from_pretrained(model_dir)
    rows = split.filter(lambda r: r["task_type"] == TASK_POSITION and r["dataset"] == "hrsid")
    pixels = processor.image_processor(list(rows["image"]), return_tensors="pt")["pixel_values"]
    with torch.no_grad():
        tokens = model.vision_model(pixel_values=pixels).last_hidden_state[:, 1:]
    side = round(tokens.shape[1] ** 0.5)
    grid = tokens.reshape(len(rows), side, side, -1).permute(0, 3, 1, 2)
    return F.adaptive_max_pool2d(grid, 3).flatten(2).transpose(1, 2)


def answers_of(regions: torch.Tensor) -> list[str]:
    return [", ".join(str(i + 1) for i in np.flatnonzero(row)) for row in regions.numpy()]


def train_and_test(train, test, epochs: int, seed: int, network=network) -> tuple[float, float]:
    (x_train, y_train, _), (x_test, y_test, test_answers) = train, test
    torch.manual_seed(seed)
    model = train_one_cycle(network(), x_train, y_train, F.binary_cross_entropy_with_logits, epochs, batch_size=16)
    with torch.no_grad():
        predicted = (model(x_test).sigmoid() > 0.5).float()
    exact = np.mean([p == a for p, a in zip(answers_of(predicted), test_answers)]) * 100
    hits = (predicted * y_test).sum()
    f1 = (2 * hits / (predicted.sum() + y_test.sum())).item() * 100
    return exact, f1


def main(argv=None) -> int:
    parser = ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", type=Path, required=True, help="a `python -m dataset_scripts.geovl vqa` folder")
    parser.add_argument("--size", type=int, default=128, help="image side in pixels fed to the CNN")
    parser.add_argument("--epochs", type=int, default=60, help="passes over the train images")
    parser.add_argument("--seeds", type=int, default=3, help="seeds 0..N-1")
    parser.add_argument("--knowlip-model", type=Path, help="also probe this SAR-KnowLIP model's frozen image tower")
    args = parser.parse_args(argv)
    if not args.data.is_dir():
        parser.error(f"--data {args.data}: not a folder (python -m dataset_scripts.geovl vqa ...)")
    splits = load_vqa_sets(args.data)
    train, test = (position_questions(splits[name], args.size) for name in ("train", "test"))
    print(f"HRSID position questions: {len(train[2])} train, {len(test[2])} test")
    prior = majority_answer_accuracy(train[2], [TASK_POSITION] * len(train[2]), test[2], [TASK_POSITION] * len(test[2]))
    print(f"majority-answer prior: {prior.overall:.1f} %")
    for seed in range(args.seeds):
        exact, f1 = train_and_test(train, test, args.epochs, seed)
        print(f"seed {seed}: exact answer {exact:.1f} %, region F1 {f1:.1f} %", flush=True)
    if args.knowlip_model:
        tokens = [knowlip_region_tokens(args.knowlip_model, splits[name]) for name in ("train", "test")]
        mean, std = tokens[0].mean(dim=(0, 1)), tokens[0].std(dim=(0, 1)) + 1e-6
        train, test = ((((t - mean) / std), *rest[1:]) for t, rest in zip(tokens, (train, test)))
        for seed in range(args.seeds):
            exact, f1 = train_and_test(train, test, args.epochs, seed,
                                       lambda: nn.Sequential(nn.Linear(len(mean), 1), nn.Flatten()))
            print(f"{args.knowlip_model} frozen tokens, seed {seed}: exact answer {exact:.1f} %, region F1 {f1:.1f} %",
                  flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(run_cli(main))
