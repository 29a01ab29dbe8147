"""8-bit raster images (JPEG, PNG, BMP and 8-bit TIFF chips) decoded with PIL by the model folder's one SAR raster
reader (modeling_sarclip/sar_raster_sarclip.py), keeping the file's bytes for an ``Image()`` column."""

from __future__ import annotations

import dataclasses
import io
from pathlib import Path

import numpy as np
from PIL import Image

from modeling_sarclip.sar_raster_sarclip import SarRasterError, read_pil_image

from ..errors import DatasetBuildError

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff")
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


@dataclasses.dataclass
class ImageFile:
    """A decoded 8-bit image and the file's original bytes (kept so a dataset stores them unchanged)."""

    path: Path
    array: np.ndarray  # uint8, (H, W, bands) as decoded by PIL (palette and alpha images as L or RGB)
    data: bytes

    @property
    def height(self) -> int:
        return self.array.shape[0]

    @property
    def width(self) -> int:
        return self.array.shape[1]


def read_image_file(path: str | Path) -> ImageFile:
    """Decode an 8-bit image fully with PIL (the decoder that reads it back from a dataset) and keep its bytes.

    Raises DatasetBuildError naming the file if it is missing, unreadable, truncated, larger than the reader's pixel
    limit or not 8-bit. PNG chunk checksums are verified too (a PNG cut inside its last chunk still decodes).
    """
    path = Path(path)
    try:
        with open(path, "rb") as handle:
            if not handle.read(1):
                raise DatasetBuildError(path, "empty file")
            handle.seek(0)
            array = read_pil_image(handle, path)  # the header's size is checked before anything else is read
            handle.seek(0)
            data = handle.read()
    except SarRasterError as err:
        raise DatasetBuildError(err.source, err.problem) from err
    except OSError as err:
        raise DatasetBuildError(path, f"cannot read file ({err.strerror or err})") from err
    if data.startswith(PNG_SIGNATURE):
        try:
            with Image.open(io.BytesIO(data)) as image:
                image.verify()
        except Exception as err:  # PIL raises several types for bad chunks
            raise DatasetBuildError(path, f"damaged PNG ({type(err).__name__}: {err})") from err
    if array.dtype != np.uint8:
        raise DatasetBuildError(
            path, f"expected an 8-bit image, got {array.dtype} (use the TIFF reader for SAR values)")
    return ImageFile(path, array, data)
