"""SAR radiometry: amplitude -> dB, the one percentile stretch, the one dual-pol composite, and the SARCLIP recipe.

The official SARCLIP recipe (CAESAR-Radi/SARCLIP `sar_clip/data.py::readtif`), `sarclip_unit_planes` (channels first,
as the model takes it) and `sarclip_unit_range` (bands last):
- uint8: x / 255.
- float (dB), 1 band: (x + 25) / 30; 2 bands (VV, VH dB): (VV + 25) / 25 and (VH + 32.5) / 25. Values above 1 are set
  to 1; the official code has no lower clip and neither do we.
- channels: 1 band is repeated to 3; 2 bands (b0, b1) become (b0, b1, (b0 + b1) / 2) (`dual_pol_composite`); 3 bands
  are kept.
Inputs the official code rejects, and what we chose for them:
- complex SLC: amplitude |z| -> 20 log10 -> the float dB recipe.
- uint16 amplitude (uncalibrated digital numbers, whose dB level depends on the product): 20 log10 per band, then a
  per-band linear stretch of the 1st..99th percentile to [0, 1] (clipped) (`percentile_stretch`).
The SAR-GEOVL 8-bit quantisation (dataset_scripts/geovl/dynamic_range.py) uses the same stretch, scene-wide.
"""

from __future__ import annotations

import numpy as np

from .sar_raster_sarclip import SarRasterError, bands_last

# (offset, span) of the official float dB recipe: unit = min((dB + offset) / span, 1)
SINGLE_BAND_DB = (25.0, 30.0)
DUAL_POL_DB = ((25.0, 25.0), (32.5, 25.0))  # band 0 = VV dB, band 1 = VH dB
STRETCH_PERCENTILES = (1.0, 99.0)
MIN_STRETCH_SPAN = 1e-6  # a (nearly) constant band maps to 0 at its low threshold and 1 above it
COMPLEX_AMPLITUDE_FLOOR = 1e-10  # |z| below this is taken as this (-200 dB)
DN_AMPLITUDE_FLOOR = 1.0  # integer amplitude 0 is taken as 1 (0 dB)
BYTE_UNIT = (np.arange(256) / 255.0).astype(np.float32)  # uint8 value -> x / 255 in float32


def amplitude_to_db(array: np.ndarray) -> np.ndarray:
    """Amplitude -> dB, 20 log10: complex SLC uses |z| (in its float precision), and float amplitude (e.g. MSTAR's
    magnitude) is |z| already; integer digital numbers are converted to float64 first. Values below
    COMPLEX_AMPLITUDE_FLOOR (complex, float) / DN_AMPLITUDE_FLOOR (integers) are floored there."""
    if np.iscomplexobj(array):
        return 20 * np.log10(np.maximum(np.abs(array), COMPLEX_AMPLITUDE_FLOOR))
    if np.issubdtype(array.dtype, np.floating):
        return 20 * np.log10(np.maximum(array, COMPLEX_AMPLITUDE_FLOOR))
    return 20 * np.log10(np.maximum(array.astype(np.float64), DN_AMPLITUDE_FLOOR))


def percentile_stretch(
    band: np.ndarray,
    valid: np.ndarray | None = None,
    percentiles: tuple[float, float] = STRETCH_PERCENTILES,
    max_samples: int | None = None,
) -> np.ndarray:
    """One (H, W) band -> values in [0, 1]: the low/high percentiles map linearly to 0/1, clipped outside.

    The thresholds come from the whole band (a scene, or a chip), over the `valid` pixels only when a (H, W) mask is
    given, and from a regular subsample of at most about `max_samples` pixels when given (very large scenes). The
    result has the precision of `band - threshold` (float64 thresholds: float64).
    """
    stride = 1 if max_samples is None else max(1, int(np.ceil(np.sqrt(band.size / max_samples))))
    samples = band[::stride, ::stride]
    if valid is not None:
        samples = samples[valid[::stride, ::stride]]
    low, high = np.percentile(samples, percentiles)
    return np.clip((band - low) / np.maximum(high - low, MIN_STRETCH_SPAN), 0.0, 1.0)


def dual_pol_composite(bands: np.ndarray) -> np.ndarray:
    """(H, W, 2) dual-pol (b0, b1) -> (H, W, 3) = (b0, b1, mean(b0, b1)), the official SARCLIP composite; integer
    input keeps its dtype (mean rounded down)."""
    if bands.ndim != 3 or bands.shape[2] != 2:
        raise ValueError(f"dual-pol composite needs (H, W, 2) bands, got shape {bands.shape}")
    return np.concatenate([bands, _pol_mean(bands[:, :, 0], bands[:, :, 1])[:, :, None]], axis=-1)


def _pol_mean(b0: np.ndarray, b1: np.ndarray, out: np.ndarray | None = None) -> np.ndarray:
    """The composite's third band: (b0 + b1) // 2 for integers (dtype kept); for floats (b0 + b1) / 2, the same bits
    as a mean over a 2-long band axis without that slow reduction."""
    if b0.dtype.kind in "ui":
        mean = ((b0.astype(np.int64) + b1) // 2).astype(b0.dtype)
        return mean if out is None else np.copyto(out, mean) or out
    out = np.add(b0, b1, out=out)
    return np.divide(out, 2, out=out)


def sarclip_unit_planes(raster: np.ndarray, source: str = "image") -> np.ndarray:
    """The SARCLIP recipe (module docstring) on a (H, W, bands) raster -> float32 channels-first planes, nominally in
    [0, 1]: (3, H, W), or (1, H, W) for a single band (the three channels are its copies). Computed plane by plane on
    contiguous memory (the model's layout), which is several times faster than on interleaved bands.

    Raises SarRasterError naming `source` for other band counts, NaN/inf values and unsupported pixel types.
    """
    bands = raster.shape[-1] if raster.ndim == 3 else 0
    if not 1 <= bands <= 3:
        raise SarRasterError(
            source, f"expected a (H, W), (H, W, C) or (C, H, W) raster with 1-3 bands, got shape {raster.shape}"
        )
    if np.iscomplexobj(raster):
        raster = amplitude_to_db(raster)
    planes = np.empty((1 if bands == 1 else 3, *raster.shape[:2]), np.float32)  # 2 bands: room for the composite
    if np.issubdtype(raster.dtype, np.floating):
        finite = np.isfinite(raster)
        if not finite.all():
            raise SarRasterError(source, f"{int((~finite).sum())} NaN/inf pixel values")
        if bands == 1:
            offsets_spans = [SINGLE_BAND_DB]
        elif bands == 2:
            offsets_spans = DUAL_POL_DB
        else:
            raise SarRasterError(
                source, f"float rasters are read as dB and must have 1 band or 2 bands (VV, VH), got {bands}"
            )
        for b, (offset, span) in enumerate(offsets_spans):  # in the raster's precision, then float32
            scaled = np.add(raster[:, :, b], offset, out=planes[b] if raster.dtype == np.float32 else None)
            np.minimum(np.divide(scaled, span, out=scaled), 1.0, out=planes[b])
    elif raster.dtype == np.uint8:
        np.take(BYTE_UNIT, np.moveaxis(raster, -1, 0), out=planes[:bands])  # = (raster / 255.0).astype(np.float32)
    elif raster.dtype == np.uint16:
        db = amplitude_to_db(raster)
        for b in range(bands):
            planes[b] = percentile_stretch(db[:, :, b])
    else:
        raise SarRasterError(source, f"unsupported pixel type {raster.dtype} (use uint8, uint16, float dB or complex)")
    if bands == 2:
        _pol_mean(planes[0], planes[1], out=planes[2])
    return planes


def sarclip_unit_range(raster: np.ndarray, source: str = "image") -> np.ndarray:
    """`sarclip_unit_planes` as a float32 (H, W, 3) raster (a single band repeated to 3 channels)."""
    planes = sarclip_unit_planes(raster, source)
    return np.ascontiguousarray(np.repeat(planes, 3 // len(planes), axis=0).transpose(1, 2, 0))


def sar_to_unit_range(array: np.ndarray, source: str = "image") -> np.ndarray:
    """`sarclip_unit_range` on an in-memory (H, W), (H, W, C) or (C, H, W) raster (sar_raster_sarclip's layout rule)."""
    return sarclip_unit_range(bands_last(np.asarray(array), source), source)


__all__ = [
    "amplitude_to_db",
    "dual_pol_composite",
    "percentile_stretch",
    "sar_to_unit_range",
    "sarclip_unit_planes",
    "sarclip_unit_range",
]
