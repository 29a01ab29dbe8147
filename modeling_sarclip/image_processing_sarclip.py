"""SAR image processor: turns SAR rasters (files, arrays, PIL images) into SARCLIP `pixel_values`.

Reading and band layout: sar_raster_sarclip.py (the project's one SAR raster reader, (H, W, bands) as stored). Values:
the official SARCLIP recipe of radiometry_sarclip.py (uint8 x / 255; float dB (x + 25) / 30, dual-pol VV/VH
(VV + 25) / 25 and (VH + 32.5) / 25, values above 1 set to 1; complex SLC via 20 log10 |z|; uint16 via dB and a
per-band 1st..99th percentile stretch; 1 band repeated to 3, 2 bands -> (b0, b1, mean)), then (x - 0.5) * 2, i.e.
[-1, 1]. Optional per-channel `image_mean` / `image_std` then standardise (off by default, as in the official
recipe; `pixel_statistics` measures them on training images). Dark chips sit far from 0 (MSTAR: -0.78 +- 0.14), but
standardising them did not help from-scratch MSTAR models generalise from 17 to 15 degrees (README, Results).
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

from .radiometry_sarclip import sarclip_unit_planes
from .sar_raster_sarclip import bands_last, pil_to_array, read_sar_raster


class SarclipImageProcessor(BaseImageProcessor):
    """Image processor for SAR rasters: file paths, numpy arrays, torch tensors or PIL images (one or a list).

    Args:
        size: model input side; rasters of another size are resized (shortest edge) and centre-cropped.
        do_resize: resize/crop rasters that are not `size` x `size`; when False they must already be that size.
        image_mean, image_std: optional per-channel (3 values) standardisation after the [-1, 1] mapping,
            (x - mean) / std; both or neither.
    """

    model_input_names = ["pixel_values"]

    def __init__(self, size: int = 224, do_resize: bool = True, image_mean: list[float] | None = None,
                 image_std: list[float] | None = None, **kwargs):
        super().__init__(**kwargs)
        if (image_mean is None) != (image_std is None):
            raise ValueError("image_mean and image_std: give both or neither")
        if image_mean is not None:
            image_mean, image_std = [float(v) for v in image_mean], [float(v) for v in image_std]
            if len(image_mean) != 3 or len(image_std) != 3 or min(image_std) <= 0:
                raise ValueError(f"image_mean / image_std must be 3 values each, std > 0; got {image_mean}, {image_std}")
        self.size = size
        self.do_resize = do_resize
        self.image_mean, self.image_std = image_mean, image_std

    def fit_normalisation(self, images, max_images: int = 1024) -> "SarclipImageProcessor":
        """Standardise by `images` from now on: `image_mean` / `image_std` = `pixel_statistics` of the first
        `max_images`. Returns self."""
        self.image_mean, self.image_std = pixel_statistics(self, images, max_images)
        return self

    def load(self, image, source: str) -> np.ndarray:
        """Any supported input -> (H, W, bands) raster, values as stored (sar_raster_sarclip's reader, layout rule)."""
        if isinstance(image, (str, Path)):
            return read_sar_raster(image, metadata=False).array
        if isinstance(image, Image.Image):
            return pil_to_array(image, source)
        if isinstance(image, torch.Tensor):
            return bands_last(image.detach().cpu().numpy(), source)
        if isinstance(image, np.ndarray):
            return bands_last(image, source)
        raise TypeError(f"{source}: unsupported image type {type(image).__name__}")

    def to_pixel_values(self, image, source: str = "image", size: int | None = None, do_resize: bool | None = None,
                        out: torch.Tensor | None = None) -> torch.Tensor:
        """One raster -> `(3, size, size)` float32 tensor in the model's [-1, 1] range (written into `out` if given)."""
        size = self.size if size is None else size
        do_resize = self.do_resize if do_resize is None else do_resize
        if isinstance(image, (str, Path)):
            source = str(image)
        # a single band is one plane, the same in all three channels: it is resized and scaled once and copied at
        # the end (the same values for a third of the work)
        planes = torch.from_numpy(sarclip_unit_planes(self.load(image, source), source))
        height, width = planes.shape[1:]
        if (height, width) != (size, size):
            if not do_resize:
                raise ValueError(f"{source}: image is {height}x{width}, expected {size}x{size} (do_resize=False)")
            scale = size / min(height, width)
            new_h, new_w = max(size, round(height * scale)), max(size, round(width * scale))
            low, high = torch.aminmax(planes)
            resized = F.interpolate(planes[None], (new_h, new_w), mode="bicubic", antialias=True, align_corners=False)[0]
            top, left = (new_h - size) // 2, (new_w - size) // 2
            planes = resized[:, top : top + size, left : left + size].clamp_(low, high)  # no overshoot beyond the raster
        out = torch.empty(3, size, size) if out is None else out
        if len(planes) == 1:  # (x - 0.5) * 2 on the one plane, then copied to the three channels
            out.copy_(planes.sub_(0.5).mul_(2).expand(3, -1, -1))
        else:
            torch.sub(planes, 0.5, out=out).mul_(2)  # straight into the output: no extra copy
        if self.image_mean is not None:
            out.sub_(torch.tensor(self.image_mean)[:, None, None]).div_(torch.tensor(self.image_std)[:, None, None])
        return out

    def preprocess(self, images, return_tensors="pt", size: int | None = None, do_resize: bool | None = None, **kwargs):
        if kwargs:
            raise TypeError(f"unexpected arguments for SarclipImageProcessor: {sorted(kwargs)}")
        batch = images if isinstance(images, (list, tuple)) else [images]
        if not batch:
            raise ValueError("no images given")
        side = self.size if size is None else size
        pixel_values = torch.empty(len(batch), 3, side, side)
        for i, image in enumerate(batch):
            self.to_pixel_values(image, f"image {i} of the batch", size, do_resize, out=pixel_values[i])
        if return_tensors != "pt":
            pixel_values = pixel_values.numpy()
        return BatchFeature(data={"pixel_values": pixel_values}, tensor_type=return_tensors)


def pixel_statistics(image_processor: SarclipImageProcessor, images, max_images: int = 1024) -> tuple[list, list]:
    """Per-channel mean and std of `image_processor`'s [-1, 1] pixel values (before its own standardisation) over
    the first `max_images` of `images`: the `image_mean` / `image_std` for a model trained from scratch on them."""
    plain = SarclipImageProcessor(size=image_processor.size, do_resize=image_processor.do_resize)
    total, total_sq, count = torch.zeros(3, dtype=torch.float64), torch.zeros(3, dtype=torch.float64), 0
    for start in range(0, min(len(images), max_images), 64):
        batch = [images[i] for i in range(start, min(start + 64, len(images), max_images))]
        pixels = plain(batch, return_tensors="pt")["pixel_values"].double()
        total += pixels.sum(dim=(0, 2, 3))
        total_sq += pixels.square().sum(dim=(0, 2, 3))
        count += pixels.numel() // 3
    if count == 0:
        raise ValueError("pixel_statistics: no images")
    mean = total / count
    std = (total_sq / count - mean.square()).clamp_min(1e-12).sqrt()
    return [round(float(v), 6) for v in mean], [round(max(float(v), 1e-3), 6) for v in std]


__all__ = ["SarclipImageProcessor", "pixel_statistics"]
