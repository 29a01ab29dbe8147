"""SAR image processor: turns SAR rasters (files, arrays, PIL images) into SARCLIP `pixel_values`.

Reading and band layout: sar_raster_sarclip.py (the project's one SAR raster reader, (H, W, bands) as stored). Values:
the official SARCLIP recipe of radiometry_sarclip.py (uint8 x / 255; float dB (x + 25) / 30, dual-pol VV/VH
(VV + 25) / 25 and (VH + 32.5) / 25, values above 1 set to 1; complex SLC via 20 log10 |z|; uint16 via dB and a
per-band 1st..99th percentile stretch; 1 band repeated to 3, 2 bands -> (b0, b1, mean)), then (x - 0.5) * 2, i.e.
[-1, 1]. Then optional standardisation (off by default, as in the official recipe):
- `per_image_standardize`: each image minus its own mean, divided by its own standard deviation (over all its pixels
  and channels), then scaled and shifted to `per_image_target` (mean, std; default 0, 1). For target chips whose
  brightness varies from chip to chip and dataset to dataset (MSTAR: -0.81 +- 0.14 in [-1, 1]). When fine-tuning a
  model that was trained without it, the target is the base's `pixel_reference`: the chips then look, in level and
  contrast, like the images the base was trained on (a base shown chips far from its training range maps them all
  to one embedding, and fine-tuning it collapses: docs/RESULTS.md). Applied after any crop, the same at training and
  inference (saved with the processor).
- per-channel `image_mean` / `image_std` (`pixel_statistics` of the training images): one offset and scale for the
  whole dataset. On MSTAR it generalised worse from 17 to 15 degrees than either alternative (docs/RESULTS.md).
`pixel_reference` (mean, mean per-image std of the model inputs the model was trained on; recorded by the trainers)
describes the model, not the preprocessing: it changes no pixel.
Geometry: with `do_resize` the shortest edge is resized to `size` (bicubic with antialias) and the centre cropped;
without it the centre `size` x `size` is cropped at native resolution (SAR target chips: native pixels, no
resampling of the speckle). Official tiles are 224 x 224 and go to the model unchanged.
"""

from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image
from transformers.feature_extraction_utils import BatchFeature
from transformers.image_processing_utils import BaseImageProcessor

from .radiometry_sarclip import amplitude_to_db, sarclip_unit_planes
from .sar_raster_sarclip import array_from_cell, bands_last, is_raster_cell, pil_to_array, read_sar_raster

STANDARDIZATIONS = ("none", "per_image", "dataset")


class SarclipImageProcessor(BaseImageProcessor):
    """Image processor for SAR rasters: file paths, numpy arrays, torch tensors or PIL images (one or a list).

    Args:
        size: model input side.
        do_resize: resize the shortest edge to `size`, then centre-crop; when False, centre-crop `size` x `size` at
            native resolution (the raster must be at least that large).
        per_image_standardize: standardise each image by its own mean and standard deviation, then map it to
            `per_image_target` (mean, std).
        pixel_reference: (mean, mean per-image std) of the inputs the model was trained on (informational).
        image_mean, image_std: optional per-channel (3 values) standardisation after the [-1, 1] mapping,
            (x - mean) / std; both or neither.
    """

    model_input_names = ["pixel_values"]

    def __init__(self, size: int = 224, do_resize: bool = True, image_mean: list[float] | None = None,
                 image_std: list[float] | None = None, per_image_standardize: bool = False,
                 per_image_target: list[float] = (0.0, 1.0), pixel_reference: list[float] | None = None, **kwargs):
        super().__init__(**kwargs)
        if image_mean is not None and per_image_standardize:
            raise ValueError("per_image_standardize and image_mean / image_std: choose one standardisation")
        if (image_mean is None) != (image_std is None):
            raise ValueError("image_mean and image_std: give both or neither")
        if image_mean is not None:
            image_mean, image_std = [float(v) for v in image_mean], [float(v) for v in image_std]
            if len(image_mean) != 3 or len(image_std) != 3 or min(image_std) <= 0:
                raise ValueError(f"image_mean / image_std must be 3 values each, std > 0; got {image_mean}, {image_std}")
        self.size = size
        self.do_resize = do_resize
        self.image_mean, self.image_std = image_mean, image_std
        self.per_image_standardize = bool(per_image_standardize)
        self.per_image_target = _mean_std(per_image_target, "per_image_target")
        self.pixel_reference = None if pixel_reference is None else _mean_std(pixel_reference, "pixel_reference")

    def set_standardization(self, mode: str, images=None, max_images: int = 1024,
                            target: list[float] = (0.0, 1.0)) -> "SarclipImageProcessor":
        """Standardise from now on by `mode`: "none", "per_image" (to `target` mean, std), or "dataset"
        (`image_mean` / `image_std` = `pixel_statistics` of the first `max_images` of `images`). Returns self."""
        if mode not in STANDARDIZATIONS:
            raise ValueError(f"standardize must be one of {STANDARDIZATIONS}, got {mode!r}")
        self.image_mean = self.image_std = None
        self.per_image_standardize = mode == "per_image"
        self.per_image_target = _mean_std(target, "target")
        if mode == "dataset":
            if images is None:
                raise ValueError("standardize: dataset needs the train images to measure (not available here)")
            self.image_mean, self.image_std = pixel_statistics(self, images, max_images)
        return self

    @property
    def standardization(self) -> str:
        """ "none", "per_image" or "dataset": what `standardize` applies."""
        return "per_image" if self.per_image_standardize else "dataset" if self.image_mean is not None else "none"

    def standardize(self, pixel_values: torch.Tensor) -> torch.Tensor:
        """(B, 3, H, W) or (3, H, W) pixel values in [-1, 1] -> standardised as configured (in place)."""
        if self.per_image_standardize:
            dims = tuple(range(pixel_values.ndim - 3, pixel_values.ndim))
            mean = pixel_values.mean(dim=dims, keepdim=True)
            std = pixel_values.std(dim=dims, keepdim=True, unbiased=False).clamp_min(1e-6)
            target_mean, target_std = self.per_image_target
            pixel_values.sub_(mean).div_(std / target_std).add_(target_mean)
        elif self.image_mean is not None:
            pixel_values.sub_(torch.tensor(self.image_mean)[:, None, None]).div_(
                torch.tensor(self.image_std)[:, None, None])
        return pixel_values

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
        if is_raster_cell(image):  # a dataset row's array columns; linear amplitude goes to dB as SLC does
            values = array_from_cell(image)
            return amplitude_to_db(values) if image.get("unit") == "amplitude" else values
        raise TypeError(f"{source}: unsupported image type {type(image).__name__}")

    def to_pixel_values(self, image, source: str = "image", size: int | None = None, do_resize: bool | None = None,
                        out: torch.Tensor | None = None, margin: int = 0, standardize: bool = True) -> torch.Tensor:
        """One raster -> `(3, size, size)` float32 tensor in the model's [-1, 1] range, then standardised as
        configured (written into `out` if given).

        `margin` > 0 returns the centre `size + 2 * margin` square at the same scale instead (raster pixels where it
        has them, reflected beyond), for random-crop augmentation; then standardise the crop, not this.
        """
        size = self.size if size is None else size
        do_resize = self.do_resize if do_resize is None else do_resize
        if isinstance(image, (str, Path)):
            source = str(image)
        # a single band is one plane, the same in all three channels: it is resized and scaled once and copied at
        # the end (the same values for a third of the work)
        planes = torch.from_numpy(sarclip_unit_planes(self.load(image, source), source))
        height, width = planes.shape[1:]
        if do_resize and (height, width) != (size, size):
            scale = size / min(height, width)
            new_h, new_w = max(size, round(height * scale)), max(size, round(width * scale))
            low, high = torch.aminmax(planes)
            planes = F.interpolate(planes[None], (new_h, new_w), mode="bicubic", antialias=True,
                                   align_corners=False)[0].clamp_(low, high)  # no overshoot beyond the raster
            height, width = new_h, new_w
        elif min(height, width) < size:
            raise ValueError(f"{source}: image is {height}x{width}, smaller than {size}x{size} (do_resize=False "
                             "crops at native resolution)")
        side = size + 2 * margin
        if (height, width) != (side, side):
            planes = centre_square(planes, side)
        out = torch.empty(3, side, side) if out is None else out
        if len(planes) == 1:  # (x - 0.5) * 2 on the one plane, then copied to the three channels
            out.copy_(planes.sub_(0.5).mul_(2).expand(3, -1, -1))
        else:
            torch.sub(planes, 0.5, out=out).mul_(2)  # straight into the output: no extra copy
        return self.standardize(out) if standardize else out

    def preprocess(self, images, return_tensors="pt", size: int | None = None, do_resize: bool | None = None,
                   margin: int = 0, standardize: bool = True, **kwargs):
        """Images -> `pixel_values` (B, 3, size, size). `margin` and `standardize=False`: see `to_pixel_values`."""
        if kwargs:
            raise TypeError(f"unexpected arguments for SarclipImageProcessor: {sorted(kwargs)}")
        batch = images if isinstance(images, (list, tuple)) else [images]
        if not batch:
            raise ValueError("no images given")
        side = (self.size if size is None else size) + 2 * margin
        pixel_values = torch.empty(len(batch), 3, side, side)
        for i, image in enumerate(batch):
            self.to_pixel_values(image, f"image {i} of the batch", size, do_resize, out=pixel_values[i], margin=margin,
                                 standardize=standardize)
        if return_tensors != "pt":
            pixel_values = pixel_values.numpy()
        return BatchFeature(data={"pixel_values": pixel_values}, tensor_type=return_tensors)


def centre_square(planes: torch.Tensor, side: int) -> torch.Tensor:
    """The centre `side` x `side` of (C, H, W) `planes`, reflected where the raster is smaller than that."""
    height, width = planes.shape[1:]
    pad_h, pad_w = max(0, side - height), max(0, side - width)
    if pad_h or pad_w:
        if pad_h >= height or pad_w >= width:
            raise ValueError(f"a {height}x{width} raster cannot give a {side}x{side} crop by reflection")
        planes = F.pad(planes[None], (pad_w // 2, pad_w - pad_w // 2, pad_h // 2, pad_h - pad_h // 2),
                       mode="reflect")[0]
        height, width = planes.shape[1:]
    top, left = (height - side) // 2, (width - side) // 2
    return planes[:, top : top + side, left : left + side]


def _mean_std(values, name: str) -> list[float]:
    values = [float(v) for v in values]
    if len(values) != 2 or not values[1] > 0:
        raise ValueError(f"{name} must be [mean, std] with std > 0, got {values}")
    return values


def _pixel_batches(image_processor: SarclipImageProcessor, images, max_images: int, batch_size: int = 64):
    """`image_processor`'s pixel values (float64) of the first `max_images` of `images`, a batch at a time."""
    end = min(len(images), max_images)
    for start in range(0, end, batch_size):
        batch = [images[i] for i in range(start, min(start + batch_size, end))]
        yield image_processor(batch, return_tensors="pt")["pixel_values"].double()


def reference_statistics(image_processor: SarclipImageProcessor, images, max_images: int = 1024) -> list[float]:
    """[mean, mean per-image std] of what `image_processor` gives the model for the first `max_images` of `images`
    (its standardisation included): the `pixel_reference` of a model trained on them."""
    total = spread = count = 0.0
    for pixels in _pixel_batches(image_processor, images, max_images):
        total += float(pixels.mean(dim=(1, 2, 3)).sum())
        spread += float(pixels.std(dim=(1, 2, 3), unbiased=False).sum())
        count += len(pixels)
    if not count:
        raise ValueError("reference_statistics: no images")
    return [round(total / count, 6), round(max(spread / count, 1e-6), 6)]


def pixel_statistics(image_processor: SarclipImageProcessor, images, max_images: int = 1024) -> tuple[list, list]:
    """Per-channel mean and std of `image_processor`'s [-1, 1] pixel values (before its own standardisation) over
    the first `max_images` of `images`: the `image_mean` / `image_std` for a model trained from scratch on them."""
    plain = SarclipImageProcessor(size=image_processor.size, do_resize=image_processor.do_resize)  # unstandardised
    total, total_sq, count = torch.zeros(3, dtype=torch.float64), torch.zeros(3, dtype=torch.float64), 0
    for pixels in _pixel_batches(plain, images, max_images):
        total += pixels.sum(dim=(0, 2, 3))
        total_sq += pixels.square().sum(dim=(0, 2, 3))
        count += pixels.numel() // 3
    if count == 0:
        raise ValueError("pixel_statistics: no images")
    mean = total / count
    std = (total_sq / count - mean.square()).clamp_min(1e-12).sqrt()
    return [round(float(v), 6) for v in mean], [round(max(float(v), 1e-3), 6) for v in std]


__all__ = ["STANDARDIZATIONS", "SarclipImageProcessor", "centre_square", "pixel_statistics", "reference_statistics"]
