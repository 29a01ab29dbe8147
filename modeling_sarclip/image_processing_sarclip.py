"""SAR image processor: turns SAR rasters (files, arrays, PIL images) into SARCLIP `pixel_values`.

Default recipe = the official SARCLIP one (CAESAR-Radi/SARCLIP `sar_clip/data.py::readtif`):
- uint8: x / 255.
- float (dB), 1 band: (x + 25) / 30; 2 bands (VV, VH dB): (VV + 25) / 25 and (VH + 32.5) / 25. Values above 1 are set
  to 1; the official code has no lower clip and neither do we.
- channels: 1 band is repeated to 3; 2 bands (b0, b1) become (b0, b1, (b0 + b1) / 2); 3 bands are kept.
- then (x - 0.5) * 2, i.e. [-1, 1], no mean/std normalisation.
Inputs the official code rejects, and what we chose for them:
- complex SLC: amplitude |z| -> 20 log10 -> the float dB recipe.
- uint16 amplitude (uncalibrated digital numbers, whose dB level depends on the product): 20 log10 per band, then a
  per-band linear stretch of the 1st..99th percentile to [0, 1] (clipped).
Resize (shortest edge, bicubic with antialias) and centre crop only run when the raster is not already `size` x `size`
(official tiles are 224 x 224 and go to the model unchanged).
"""

from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image
from transformers.feature_extraction_utils import BatchFeature
from transformers.image_processing_utils import BaseImageProcessor

TIFF_SUFFIXES = {".tif", ".tiff"}
UINT16_PERCENTILES = (1.0, 99.0)


def read_sar_file(path: str | Path) -> np.ndarray:
    """Read a raster file with all its bands and its stored dtype: TIFF via tifffile, other formats via PIL."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no such SAR image file")
    try:
        if path.suffix.lower() in TIFF_SUFFIXES:
            import tifffile

            array = np.asarray(tifffile.imread(path))
            if array.size == 0:
                raise ValueError("no image data")
            return array
        with Image.open(path) as image:
            return pil_to_array(image, str(path))
    except Exception as e:  # any decoder failure (truncated, corrupt, unknown format) is reported with the file name
        raise ValueError(f"{path}: cannot read SAR image ({type(e).__name__}: {e})") from e


def pil_to_array(image: Image.Image, source: str) -> np.ndarray:
    """PIL image -> array keeping SAR-relevant precision (16-bit and float modes are not squashed to 8 bits)."""
    if image.mode in ("L", "RGB", "F", "I;16", "I;16B", "I;16L"):
        array = np.asarray(image)
        return array.astype(np.uint16) if image.mode.startswith("I;16") else array
    if image.mode in ("LA", "La"):
        return np.asarray(image.convert("L"))
    if image.mode in ("RGBA", "RGBa", "P", "CMYK", "YCbCr", "1"):
        return np.asarray(image.convert("RGB"))
    if image.mode == "I":
        array = np.asarray(image)
        if array.size and (array.min() < 0 or array.max() > np.iinfo(np.uint16).max):
            raise ValueError(f"{source}: 32-bit integer image outside the uint16 range")
        return array.astype(np.uint16)
    raise ValueError(f"{source}: unsupported PIL image mode {image.mode!r}")


def to_hwc(array: np.ndarray, source: str) -> np.ndarray:
    """(H, W), (H, W, C) or (C, H, W) with C <= 3 bands -> (H, W, C)."""
    if array.ndim == 2:
        array = array[:, :, None]
    elif array.ndim == 3 and array.shape[-1] > 3 and array.shape[0] <= 3:
        array = np.moveaxis(array, 0, -1)
    if array.ndim != 3 or not 1 <= array.shape[-1] <= 3:
        raise ValueError(
            f"{source}: expected a (H, W), (H, W, C) or (C, H, W) raster with 1-3 bands, got shape {array.shape}"
        )
    if array.shape[0] == 0 or array.shape[1] == 0:
        raise ValueError(f"{source}: empty image (shape {array.shape})")
    return array


def sar_to_unit_range(array: np.ndarray, source: str = "image") -> np.ndarray:
    """Apply the SARCLIP value recipe (module docstring): raster -> float32 (H, W, 3), nominally in [0, 1]."""
    array = to_hwc(np.asarray(array), source)
    if np.iscomplexobj(array):
        array = 20 * np.log10(np.maximum(np.abs(array), 1e-10))
    if np.issubdtype(array.dtype, np.floating):
        finite = np.isfinite(array)
        if not finite.all():
            raise ValueError(f"{source}: {int((~finite).sum())} NaN/inf pixel values")
        bands = array.shape[-1]
        if bands == 1:
            unit = np.minimum((array + 25.0) / 30.0, 1.0)
        elif bands == 2:
            unit = np.stack(
                [np.minimum((array[..., 0] + 25.0) / 25.0, 1.0), np.minimum((array[..., 1] + 32.5) / 25.0, 1.0)], -1
            )
        else:
            raise ValueError(
                f"{source}: float rasters are read as dB and must have 1 band or 2 bands (VV, VH), got {bands}"
            )
    elif array.dtype == np.uint8:
        unit = array / 255.0
    elif array.dtype == np.uint16:
        db = 20 * np.log10(np.maximum(array.astype(np.float64), 1.0))
        low, high = np.percentile(db, UINT16_PERCENTILES, axis=(0, 1))
        unit = np.clip((db - low) / np.maximum(high - low, 1e-6), 0.0, 1.0)
    else:
        raise ValueError(f"{source}: unsupported pixel type {array.dtype} (use uint8, uint16, float dB or complex)")
    unit = unit.astype(np.float32)
    if unit.shape[-1] == 1:
        unit = np.repeat(unit, 3, axis=-1)
    elif unit.shape[-1] == 2:
        unit = np.concatenate([unit, unit.mean(axis=-1, keepdims=True)], axis=-1)
    return unit


class SarclipImageProcessor(BaseImageProcessor):
    """Image processor for SAR rasters: file paths, numpy arrays, torch tensors or PIL images (one or a list).

    Args:
        size: model input side; rasters of another size are resized (shortest edge) and centre-cropped.
        do_resize: resize/crop rasters that are not `size` x `size`; when False they must already be that size.
    """

    model_input_names = ["pixel_values"]

    def __init__(self, size: int = 224, do_resize: bool = True, **kwargs):
        super().__init__(**kwargs)
        self.size = size
        self.do_resize = do_resize

    def load(self, image, source: str) -> np.ndarray:
        """Any supported input -> raw raster array."""
        if isinstance(image, (str, Path)):
            return read_sar_file(image)
        if isinstance(image, Image.Image):
            return pil_to_array(image, source)
        if isinstance(image, torch.Tensor):
            return image.detach().cpu().numpy()
        if isinstance(image, np.ndarray):
            return image
        raise TypeError(f"{source}: unsupported image type {type(image).__name__}")

    def to_pixel_values(self, image, source: str = "image", size: int | None = None, do_resize: bool | None = None):
        """One raster -> `(3, size, size)` float32 tensor in the model's [-1, 1] range."""
        size = self.size if size is None else size
        do_resize = self.do_resize if do_resize is None else do_resize
        if isinstance(image, (str, Path)):
            source = str(image)
        unit = torch.from_numpy(sar_to_unit_range(self.load(image, source), source)).permute(2, 0, 1)
        height, width = unit.shape[1:]
        if (height, width) != (size, size):
            if not do_resize:
                raise ValueError(f"{source}: image is {height}x{width}, expected {size}x{size} (do_resize=False)")
            scale = size / min(height, width)
            new_h, new_w = max(size, round(height * scale)), max(size, round(width * scale))
            resized = F.interpolate(unit[None], (new_h, new_w), mode="bicubic", antialias=True, align_corners=False)[0]
            unit = resized.clamp(unit.min(), unit.max())  # no bicubic overshoot beyond the raster's own range
            top, left = (new_h - size) // 2, (new_w - size) // 2
            unit = unit[:, top : top + size, left : left + size]
        return (unit - 0.5) * 2

    def preprocess(self, images, return_tensors="pt", size: int | None = None, do_resize: bool | None = None, **kwargs):
        if kwargs:
            raise TypeError(f"unexpected arguments for SarclipImageProcessor: {sorted(kwargs)}")
        batch = images if isinstance(images, (list, tuple)) else [images]
        if not batch:
            raise ValueError("no images given")
        pixel_values = torch.stack(
            [self.to_pixel_values(img, f"image {i} of the batch", size, do_resize) for i, img in enumerate(batch)]
        )
        if return_tensors != "pt":
            pixel_values = pixel_values.numpy()
        return BatchFeature(data={"pixel_values": pixel_values}, tensor_type=return_tensors)


__all__ = ["SarclipImageProcessor", "read_sar_file", "sar_to_unit_range"]
