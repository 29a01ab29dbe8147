"""The supervised references' shared parts (bench/bench_opensarship_supervised_cnn.py,
bench/bench_vqa_position_reference.py): a conv block and a one-cycle AdamW training loop."""

from __future__ import annotations

import torch
from torch import nn


def conv_block(cin: int, cout: int) -> nn.Sequential:
    """Two 3x3 conv-BN-ReLU layers and a 2x2 max pool (the supervised references' building block)."""
    return nn.Sequential(nn.Conv2d(cin, cout, 3, padding=1, bias=False), nn.BatchNorm2d(cout), nn.ReLU(),
                         nn.Conv2d(cout, cout, 3, padding=1, bias=False), nn.BatchNorm2d(cout), nn.ReLU(),
                         nn.MaxPool2d(2))


def train_one_cycle(model: nn.Module, x_train: torch.Tensor, y_train: torch.Tensor, loss_fn, epochs: int,
                    batch_size: int = 32, augment=None) -> nn.Module:
    """AdamW lr 2e-3, wd 0.05, one-cycle schedule, shuffled batches (`augment(x)` applied to each); returns the
    model in eval mode."""
    optimizer = torch.optim.AdamW(model.parameters(), 2e-3, weight_decay=0.05)
    steps = max(len(x_train) // batch_size, 1)
    schedule = torch.optim.lr_scheduler.OneCycleLR(optimizer, 2e-3, total_steps=epochs * steps)
    for _ in range(epochs):
        model.train()
        order = torch.randperm(len(x_train))
        for step in range(steps):
            index = order[step * batch_size:(step + 1) * batch_size]
            x = x_train[index] if augment is None else augment(x_train[index])
            loss = loss_fn(model(x), y_train[index])
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            schedule.step()
    return model.eval()
