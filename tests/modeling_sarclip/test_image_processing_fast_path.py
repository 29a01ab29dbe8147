"""The fast image-processor path (channels-first planes, one plane for single-band rasters, in-place scaling into the
batch) gives the same bits as the plain official recipe on interleaved bands with a 3-channel resize."""

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from modeling_sarclip import SarclipImageProcessor
from modeling_sarclip.radiometry_sarclip import sarclip_unit_planes, sarclip_unit_range


def _reference(raster: np.ndarray, size: int) -> torch.Tensor:
    """The recipe written plainly: (H, W, 3) unit range, bands repeated, mean by reduction, 3-channel resize."""
    if raster.dtype == np.uint8:
        unit = (raster / 255.0).astype(np.float32)
    else:
        offsets = [(25.0, 30.0)] if raster.shape[2] == 1 else [(25.0, 25.0), (32.5, 25.0)]
        unit = np.stack([np.minimum((raster[..., b] + o) / s, 1.0) for b, (o, s) in enumerate(offsets)], -1)
        unit = unit.astype(np.float32)
    if unit.shape[2] == 1:
        unit = np.repeat(unit, 3, axis=-1)
    elif unit.shape[2] == 2:
        unit = np.concatenate([unit, unit.mean(axis=-1, keepdims=True)], axis=-1)
    unit = torch.from_numpy(unit).permute(2, 0, 1)
    height, width = unit.shape[1:]
    if (height, width) != (size, size):
        scale = size / min(height, width)
        new_h, new_w = max(size, round(height * scale)), max(size, round(width * scale))
        resized = F.interpolate(unit[None], (new_h, new_w), mode="bicubic", antialias=True)[0]
        resized = resized.clamp(unit.min(), unit.max())
        top, left = (new_h - size) // 2, (new_w - size) // 2
        unit = resized[:, top : top + size, left : left + size]
    return (unit - 0.5) * 2


def _rasters():
    rng = np.random.default_rng(0)
    shapes = [(48, 48), (30, 41), (64, 50)]  # already the model size, and two that need a resize
    for h, w in shapes:
        for bands in (1, 2, 3):
            yield rng.integers(0, 256, (h, w, bands), dtype=np.uint8)
        for bands in (1, 2):
            for dtype in (np.float32, np.float64):
                yield rng.normal(-15, 9, (h, w, bands)).astype(dtype)


@pytest.mark.parametrize("raster", list(_rasters()), ids=lambda r: f"{r.dtype}-{r.shape}")
def test_fast_path_gives_the_reference_bits(raster):
    processor = SarclipImageProcessor(size=48)
    expected = _reference(raster, 48)
    assert torch.equal(processor(images=[raster, raster])["pixel_values"], torch.stack([expected, expected]))
    assert torch.equal(processor.to_pixel_values(raster), expected)
    planes = sarclip_unit_planes(raster)
    assert planes.flags.c_contiguous and len(planes) == (1 if raster.shape[2] == 1 else 3)
    assert np.array_equal(sarclip_unit_range(raster), np.repeat(planes, 3 // len(planes), 0).transpose(1, 2, 0))
