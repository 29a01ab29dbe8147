"""Training augmentations for SAR chips, applied to `pixel_values` in the collator.

Only geometric moves that keep each pixel's value, so speckle statistics are unchanged (no resampling, no intensity
change): `translate` takes a random `size` x `size` window of the chip's centre `size + 2 * margin` square, margin =
`translate_fraction` of the side, from the image processor at the model's scale (`margin` argument): raster pixels
where the chip has them (native-resolution crops of MSTAR's 128 px chips for an 88 px input: the augmentation of the
~99 % from-scratch CNN papers), reflection beyond (a whole chip resized to the input); `hflip` / `vflip` mirror it. Flips swap near and far range (or the azimuth direction), so radar shadows point the
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

    def margin(self, size: int) -> int:
        """Pixels the chip needs on each side of the `size` x `size` window for `translate` (0 without it)."""
        return int(self.translate_fraction * size) if "translate" in self.names else 0

    def __call__(self, pixel_values: torch.Tensor, epoch: int, indices: Sequence[int], margin: int = 0
                 ) -> torch.Tensor:
        """(B, C, H + 2 margin, W + 2 margin) -> augmented (B, C, H, W); example b uses the draw of (seed, epoch,
        indices[b]). With `margin` 0 and `translate`, the border is reflected to make the margin (`self.margin`)."""
        if not self.names:
            return pixel_values
        if not margin and (margin := self.margin(min(pixel_values.shape[-2:]))):
            pixel_values = F.pad(pixel_values, (margin,) * 4, mode="reflect")
        height, width = (side - 2 * margin for side in pixel_values.shape[-2:])
        out = pixel_values.new_empty(*pixel_values.shape[:2], height, width)
        for b, index in enumerate(indices):
            digest = hashlib.sha1(f"{self.seed}/{epoch}/{index}".encode()).digest()
            out[b] = self._one(pixel_values[b], margin, torch.Generator().manual_seed(
                int.from_bytes(digest[:8], "big") >> 1))
        return out

    def _one(self, chip: torch.Tensor, margin: int, generator: torch.Generator) -> torch.Tensor:
        height, width = (side - 2 * margin for side in chip.shape[-2:])
        if "translate" in self.names:
            dy, dx = (0, 0) if not margin else torch.randint(0, 2 * margin + 1, (2,), generator=generator).tolist()
            chip = chip[:, dy : dy + height, dx : dx + width]
        if "hflip" in self.names and torch.rand((), generator=generator) < 0.5:
            chip = chip.flip(-1)
        if "vflip" in self.names and torch.rand((), generator=generator) < 0.5:
            chip = chip.flip(-2)
        return chip
