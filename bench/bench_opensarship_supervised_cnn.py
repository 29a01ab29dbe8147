"""Supervised reference for OpenSARShip ship types: what a small CNN trained with cross-entropy reaches on the same
split and CPU, beside SARCLIP's LoRA numbers (docs/RESULTS.md, "LoRA on your own chips").

    python bench/bench_opensarship_supervised_cnn.py --data /tmp/opensarship_ds [--epochs 60] [--seeds 3]

--data is the OpenSARShip build (`python -m dataset_scripts build opensarship --source ../shared/data/opensarship
--out /tmp/opensarship_ds`). Chips are resized to 64 px and standardised each by its own mean and std; four
conv-BN-ReLU blocks, global pooling, dropout 0.3; random shifts of up to 6 px and flips; AdamW lr 2e-3, wd 0.05,
one-cycle, batch 32, one thread. Prints the majority-class share, a logistic regression on the chip side alone (the
chip side is twice the ship's length in pixels), and the CNN's test accuracy per seed.
"""

from __future__ import annotations

import os

for _variable in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ[_variable] = "1"

import sys  # noqa: E402
from pathlib import Path  # noqa: E402

import datasets  # noqa: E402
import numpy as np  # noqa: E402
import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402
from torch import nn  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from bench.reference_cnn import conv_block, train_one_cycle  # noqa: E402
from sar_utils.command_line import ArgumentParser, run_cli  # noqa: E402

SIZE = 64


def chips(split: datasets.Dataset) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """(N, 1, SIZE, SIZE) standardised chips, (N,) labels, (N,) chip sides in pixels."""
    pixels, sides = [], []
    for image in split["image"]:
        array = torch.from_numpy(np.asarray(image.convert("L"), dtype=np.float32) / 255.0)[None, None]
        sides.append(array.shape[-1])
        chip = F.interpolate(array, size=(SIZE, SIZE), mode="bilinear", antialias=True, align_corners=False)[0]
        pixels.append((chip - chip.mean()) / (chip.std() + 1e-6))
    return torch.stack(pixels), torch.tensor(split["label"]), torch.tensor(sides, dtype=torch.float32)


def network(num_classes: int) -> nn.Module:
    return nn.Sequential(conv_block(1, 16), conv_block(16, 32), conv_block(32, 64), conv_block(64, 128),
                         nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Dropout(0.3), nn.Linear(128, num_classes))


def train_and_test(train, test, num_classes: int, epochs: int, seed: int) -> float:
    (x_train, y_train, _), (x_test, y_test, _) = train, test
    torch.manual_seed(seed)
    rng = np.random.default_rng(seed)

    def shift_and_flip(x):
        x = torch.roll(x, shifts=(int(rng.integers(-6, 7)), int(rng.integers(-6, 7))), dims=(2, 3))
        if rng.random() < 0.5:
            x = x.flip(3)
        return x.flip(2) if rng.random() < 0.5 else x

    model = train_one_cycle(network(num_classes), x_train, y_train, F.cross_entropy, epochs, augment=shift_and_flip)
    with torch.no_grad():
        return (model(x_test).argmax(1) == y_test).float().mean().item() * 100


def main(argv=None) -> int:
    parser = ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", type=Path, required=True, help="the OpenSARShip build folder")
    parser.add_argument("--epochs", type=int, default=60, help="passes over the train chips")
    parser.add_argument("--seeds", type=int, default=3, help="seeds 0..N-1")
    args = parser.parse_args(argv)
    if not args.data.is_dir():
        parser.error(f"--data {args.data}: not a folder (python -m dataset_scripts build opensarship ...)")
    dataset = datasets.load_dataset(str(args.data))
    train, test = chips(dataset["train"]), chips(dataset["test"])
    num_classes = dataset["train"].features["label"].num_classes
    majority = torch.mode(train[1]).values
    print(f"majority class share of test: {(test[1] == majority).float().mean().item() * 100:.1f} %")
    from sklearn.linear_model import LogisticRegression

    by_size = LogisticRegression(max_iter=2000).fit(np.log(train[2][:, None].numpy()), train[1].numpy())
    print(f"chip side alone (logistic regression): "
          f"{(by_size.predict(np.log(test[2][:, None].numpy())) == test[1].numpy()).mean() * 100:.1f} %")
    accuracies = [train_and_test(train, test, num_classes, args.epochs, seed) for seed in range(args.seeds)]
    print(f"CNN test accuracy per seed: {', '.join(f'{a:.1f} %' for a in accuracies)}")
    return 0


if __name__ == "__main__":
    sys.exit(run_cli(main))
