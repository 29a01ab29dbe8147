"""16/32-bit SAR rasters -> 8-bit: dynamic-range compression plus threshold quantisation.

The paper (3.1, step 2) follows SARDet-CL without giving its constants, so the rule here is ours:

1. linear-scale data (amplitude or intensity: integer types, or floats with no negative value) is
   log-compressed with ``log10`` (dB up to a factor 10 or 20, which the stretch below cancels);
   dB data is used as it is;
2. per band, the ``low_pct`` and ``high_pct`` percentiles of the valid pixels of the *whole scene* are
   the quantisation thresholds (computed before slicing, so all tiles of a scene share one radiometry; on a
   regular subsample of at most ``MAX_PERCENTILE_SAMPLES`` pixels);
3. values are clipped to the thresholds and mapped linearly to 0..255; invalid pixels (non-finite or
   nodata) become 0.

Steps 2-3 are the project's one percentile stretch (``modeling_sarclip.radiometry_sarclip.percentile_stretch``,
also used by the SARCLIP image processor for 16-bit input), then rounding to 8 bits; 2-band tiles become the one
dual-pol composite of that module (``dual_pol_composite``).

uint8 input is already 8-bit and passes through unchanged.
"""

from __future__ import annotations

from typing import Literal

import numpy as np
from PIL import Image

from modeling_sarclip.radiometry_sarclip import STRETCH_PERCENTILES, dual_pol_composite, percentile_stretch

InputScale = Literal["db", "linear"]

LOW_PERCENTILE, HIGH_PERCENTILE = STRETCH_PERCENTILES
# Percentiles of very large scenes are estimated on a regular subsample of at most this many pixels.
MAX_PERCENTILE_SAMPLES = 4_000_000


def infer_input_scale(data: np.ndarray) -> InputScale:
    """'db' for float data with negative values, else 'linear' (integer DNs are amplitudes)."""
    if data.dtype.kind == "f" and np.nanmin(np.where(np.isfinite(data), data, np.nan)) < 0:
        return "db"
    return "linear"


def compress_to_uint8(
    data: np.ndarray,
    valid: np.ndarray,
    input_scale: InputScale | None = None,
    low_pct: float = LOW_PERCENTILE,
    high_pct: float = HIGH_PERCENTILE,
) -> np.ndarray:
    """(H, W, B) array + (H, W) validity mask -> (H, W, B) uint8 (see the module docstring for the rule)."""
    if data.dtype == np.uint8:
        return data
    input_scale = input_scale or infer_input_scale(data)
    values = data.astype(np.float32)  # float32 halves the memory of whole-scene statistics; ample for 8-bit output
    if input_scale == "linear":
        with np.errstate(divide="ignore", invalid="ignore"):
            values = np.log10(values)
        valid = valid & np.all(np.isfinite(values), axis=2)  # zeros or negatives have no log
    if not valid.any():
        raise ValueError("no valid pixel: every pixel is nodata, non-finite or (linear scale) not positive")
    out = np.zeros(data.shape, dtype=np.uint8)
    for band in range(data.shape[2]):
        unit = percentile_stretch(values[:, :, band], valid, (low_pct, high_pct), MAX_PERCENTILE_SAMPLES)
        out[:, :, band] = np.where(valid, np.rint(unit * 255.0), 0).astype(np.uint8)
    return out


def to_pil(tile_uint8: np.ndarray) -> Image.Image:
    """(H, W, B) uint8 -> PIL image: 1 band -> 'L'; 2 bands (e.g. VV, VH) -> 'RGB' = (b0, b1, mean(b0, b1)).

    The paper stores 8-bit grayscale; dual-pol scenes keep both polarisations as the same 3-channel
    composite that this project's SARCLIP image processor builds from 2-band input.
    """
    if tile_uint8.shape[2] == 1:
        return Image.fromarray(tile_uint8[:, :, 0])
    if tile_uint8.shape[2] == 2:
        return Image.fromarray(dual_pol_composite(tile_uint8))
    raise ValueError(f"{tile_uint8.shape[2]} bands: only single- or dual-polarisation rasters are supported")
