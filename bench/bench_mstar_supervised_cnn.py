"""Supervised reference for the MSTAR SOC target: what a small CNN trained with cross-entropy reaches on this
machine's budget, beside SARCLIP's contrastive numbers (docs/RESULTS.md).

    python bench/bench_mstar_supervised_cnn.py [--data-dir ../shared/data] [--arch aconv|sarclip-rn] [--epochs 40]

Same chips and split as `train/sarclip/configs/mstar_soc.yaml` (the `mstar` builder: train 17 deg, test 15 deg),
but the protocol of the ~99 % from-scratch CNN papers: the central 128 x 128 pixels at native resolution, a random
88 x 88 crop per step (the centre crop at test), pixels in SARCLIP's [-1, 1] range. `aconv` is A-ConvNets (Chen et
al., 2016: five convolutions, no fully connected layer); `sarclip-rn` is SARCLIP's own ModifiedResNet tower (width
16, one bottleneck per stage, 96 px crops: its attention pool needs a multiple of 32) with a linear head. AdamW,
one-cycle learning rate, batch 32, one thread. Prints the 15 deg test accuracy every 5 epochs with the elapsed time.
"""

from __future__ import annotations

import os

for _variable in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ[_variable] = "1"

import sys
import tempfile  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

import datasets  # noqa: E402
import numpy as np  # noqa: E402
import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402
from torch import nn  # noqa: E402

from dataset_scripts import build_dataset  # noqa: E402
from modeling_sarclip import SarclipConfig  # noqa: E402
from modeling_sarclip.modeling_sarclip import SarclipModifiedResNet  # noqa: E402
from sar_utils.command_line import ArgumentParser, run_cli  # noqa: E402

DEFAULT_DATA_DIR = Path(__file__).resolve().parents[2] / "shared" / "data"
BASE = 128  # every MSTAR SOC chip is at least 128 x 128; the target sits in the centre


def central_chips(split: datasets.Dataset) -> tuple[torch.Tensor, torch.Tensor]:
    """(N, BASE, BASE) pixels in [-1, 1] (the central BASE x BASE of each chip) and (N,) labels."""
    chips = []
    for image in split["image"]:
        pixels = np.asarray(image.convert("L"), dtype=np.float32) / 255.0
        top, left = (pixels.shape[0] - BASE) // 2, (pixels.shape[1] - BASE) // 2
        chips.append(pixels[top : top + BASE, left : left + BASE])
    return torch.from_numpy(np.stack(chips)) * 2 - 1, torch.tensor(split["label"])


class AConvNet(nn.Module):
    """A-ConvNets for 88 x 88 single-channel chips."""

    crop = 88

    def __init__(self, num_classes: int):
        super().__init__()
        self.layers = nn.Sequential(
            nn.Conv2d(1, 16, 5), nn.ReLU(), nn.MaxPool2d(2),
            nn.Conv2d(16, 32, 5), nn.ReLU(), nn.MaxPool2d(2),
            nn.Conv2d(32, 64, 6), nn.ReLU(), nn.MaxPool2d(2),
            nn.Conv2d(64, 128, 5), nn.ReLU(), nn.Dropout(0.5),
            nn.Conv2d(128, num_classes, 3), nn.Flatten(),
        )

    def forward(self, chips: torch.Tensor) -> torch.Tensor:
        return self.layers(chips[:, None])


class SarclipResNetClassifier(nn.Module):
    """SARCLIP's ModifiedResNet image tower (small) + a linear head."""

    crop = 96

    def __init__(self, num_classes: int):
        super().__init__()
        config = SarclipConfig(embed_dim=128, vision_config={"image_size": self.crop, "layers": [1, 1, 1, 1],
                                                              "width": 16})
        self.tower = SarclipModifiedResNet(config)
        nn.init.normal_(self.tower.attnpool.position_embedding, std=(16 * 32) ** -0.5)
        self.head = nn.Linear(config.embed_dim, num_classes)

    def forward(self, chips: torch.Tensor) -> torch.Tensor:
        return self.head(self.tower(chips[:, None].expand(-1, 3, -1, -1)).pooler_output)


def accuracy(model: nn.Module, chips: torch.Tensor, labels: torch.Tensor) -> float:
    offset = (BASE - model.crop) // 2
    model.eval()
    with torch.no_grad():
        logits = torch.cat([model(chips[i : i + 256, offset : offset + model.crop, offset : offset + model.crop])
                            for i in range(0, len(chips), 256)])
    model.train()
    return (logits.argmax(1) == labels).float().mean().item()


def main(argv=None) -> None:
    parser = ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data-dir", type=Path, default=DEFAULT_DATA_DIR, help="holds mstar_soc/")
    parser.add_argument("--arch", choices=["aconv", "sarclip-rn"], default="aconv", help="the CNN")
    parser.add_argument("--epochs", type=int, default=40, help="passes over the 2746 train chips")
    parser.add_argument("--seed", type=int, default=0, help="initialisation and crop draws")
    args = parser.parse_args(argv)
    if not (args.data_dir / "mstar_soc").is_dir():
        parser.error(f"--data-dir {args.data_dir}: no mstar_soc/ folder there; give the folder that holds mstar_soc/")
    if args.epochs < 1:
        parser.error(f"--epochs must be at least 1, got {args.epochs}")
    datasets.disable_progress_bars()
    torch.manual_seed(args.seed)
    generator = np.random.default_rng(args.seed)
    with tempfile.TemporaryDirectory() as tmp:
        build_dataset("mstar", args.data_dir / "mstar_soc", Path(tmp) / "mstar")
        data = datasets.load_dataset(str(Path(tmp) / "mstar"))
        (train_x, train_y), (test_x, test_y) = central_chips(data["train"]), central_chips(data["test"])
    model = (AConvNet if args.arch == "aconv" else SarclipResNetClassifier)(num_classes=int(train_y.max()) + 1)
    batch_size = 32
    steps = args.epochs * -(-len(train_x) // batch_size)
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-3, weight_decay=0.0 if args.arch == "aconv" else 0.05)
    schedule = torch.optim.lr_scheduler.OneCycleLR(optimizer, 1e-3, total_steps=steps, pct_start=0.1)
    start = time.perf_counter()
    for epoch in range(1, args.epochs + 1):
        order, total = torch.randperm(len(train_x)), 0.0
        for i in range(0, len(train_x), batch_size):
            index = order[i : i + batch_size]
            tops, lefts = generator.integers(0, BASE - model.crop + 1, (2, len(index)))
            crops = torch.stack([train_x[j, t : t + model.crop, s : s + model.crop]
                                 for j, t, s in zip(index.tolist(), tops, lefts)])
            loss = F.cross_entropy(model(crops), train_y[index])
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            schedule.step()
            total += loss.item() * len(index)
        if epoch % 5 == 0 or epoch == args.epochs:
            print(f"epoch {epoch}: train loss {total / len(train_x):.4f}, 15 deg test top-1 "
                  f"{accuracy(model, test_x, test_y):.4f}, {time.perf_counter() - start:.0f} s", flush=True)


if __name__ == "__main__":
    sys.exit(run_cli(main))
