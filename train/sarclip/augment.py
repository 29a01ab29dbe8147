"""Training augmentations for SAR chips, applied to `pixel_values` in the collator.

Only geometric moves that keep each pixel's value, so speckle statistics are unchanged (no resampling, no intensity
change): `translate` shifts the chip by up to `translate_fraction` of its side, filling the uncovered border by
reflection (the default: small shifts are the augmentation that lets from-scratch MSTAR models reach ~99 %);
`hflip` / `vflip` mirror it. Flips swap near and far range (or the azimuth direction), so radar shadows point the
other way: opt in only when the target's look direction does not matter. Each example's draw depends only on
(seed, epoch, index), so a resumed run augments exactly as an uninterrupted one.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence

import torch
import torch.nn.functional as F

AUGMENTATIONS = ("translate", "hflip", "vflip")


class SarAugment:
    def __init__(self, names: Sequence[str], translate_fraction: float = 0.125, seed: int = 0):
        if unknown := sorted(set(names) - set(AUGMENTATIONS)):
            raise ValueError(f"augment: unknown augmentations {unknown}; choose from {list(AUGMENTATIONS)}")
        if not 0 <= translate_fraction < 0.5:
            raise ValueError(f"translate_fraction must be in [0, 0.5), got {translate_fraction}")
        self.names, self.translate_fraction, self.seed = tuple(names), translate_fraction, seed

    def __call__(self, pixel_values: torch.Tensor, epoch: int, indices: Sequence[int]) -> torch.Tensor:
        """(B, C, H, W) -> augmented copy; example b uses the draw of (seed, epoch, indices[b])."""
        if not self.names:
            return pixel_values
        out = torch.empty_like(pixel_values)
        for b, index in enumerate(indices):
            digest = hashlib.sha1(f"{self.seed}/{epoch}/{index}".encode()).digest()
            out[b] = self._one(pixel_values[b], torch.Generator().manual_seed(int.from_bytes(digest[:8], "big") >> 1))
        return out

    def _one(self, chip: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        if "translate" in self.names:
            height, width = chip.shape[-2:]
            margin = int(self.translate_fraction * min(height, width))
            if margin:
                dy, dx = (torch.randint(0, 2 * margin + 1, (2,), generator=generator)).tolist()
                padded = F.pad(chip[None], (margin, margin, margin, margin), mode="reflect")[0]
                chip = padded[:, dy : dy + height, dx : dx + width]
        if "hflip" in self.names and torch.rand((), generator=generator) < 0.5:
            chip = chip.flip(-1)
        if "vflip" in self.names and torch.rand((), generator=generator) < 0.5:
            chip = chip.flip(-2)
        return chip
