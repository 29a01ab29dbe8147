"""The project's one SAR raster reader: files, PIL images and arrays -> (H, W, bands), values and dtype as stored.

It lives in the model folder so that it travels with a saved SARCLIP (or SAR-KnowLIP) model: `save_pretrained` copies
the image processor's file and, recursively, every sibling it imports with `from .x import`. dataset_scripts' TIFF
and 8-bit image readers and the SAR-GEOVL GeoTIFF reader use it too.

- TIFF / GeoTIFF (a .tif/.tiff name or TIFF magic bytes): tifffile, all bands (PIL would keep only the first band of a
  multi-band TIFF), plus the GeoTIFF keys and tags as plain Python (`SarRaster.geo`) and the GDAL_NODATA value.
  Turning them into an affine transform and a CRS is dataset_scripts/geovl/geotiff.py's job: pyproj is not needed to
  load a model.
- other formats (PNG, JPEG, BMP...): PIL, keeping 16-bit and float precision (`pil_to_array`).
- one band-layout rule (`bands_last`): a file's layout comes from its TIFF axes, an in-memory array's from its shape.
- a pixel limit (`max_pixels`, default PIL's `Image.MAX_IMAGE_PIXELS`): a larger image is refused from its header,
  before any pixel is decoded (a 1.6 MB zlib-tiled 40000 x 40000 TIFF would otherwise allocate 12 GiB).
- one error type, `SarRasterError(ValueError)`, whose message is always "<file or source>: <problem>".
"""

from __future__ import annotations

import dataclasses
import enum
import io
import warnings
from pathlib import Path

import numpy as np
import tifffile
from PIL import Image

TIFF_SUFFIXES = (".tif", ".tiff")
TIFF_MAGIC = (b"II*\x00", b"MM\x00*", b"II+\x00", b"MM\x00+")  # classic and BigTIFF, little and big endian
# Sample types a SAR file may hold (8/16-bit amplitude, int16, float dB or linear, complex SLC).
SAR_DTYPES = (np.uint8, np.uint16, np.int16, np.float32, np.float64, np.complex64, np.complex128)
# An in-memory 3-D array is read as (bands, H, W) when its first axis has at most this many entries and its last more.
MAX_GUESSED_BANDS = 3


class SarRasterError(ValueError):
    """Any problem with a SAR raster (unreadable, truncated, unsupported layout or type, bad values).

    ``str(error)`` is ``"<source>: <problem>"``; ``source`` is the file (or e.g. "image 2 of the batch").
    """

    def __init__(self, source: str | Path, problem: str):
        self.source = str(source)
        self.problem = problem
        super().__init__(f"{self.source}: {problem}")


class MissingSarRasterError(SarRasterError, FileNotFoundError):
    """The file does not exist (a SarRasterError that is also a FileNotFoundError)."""


def _unreadable(source: str | Path, err: Exception) -> SarRasterError:
    """The error for any decoder failure (truncated, corrupt, unknown format), naming the file."""
    return SarRasterError(source, f"cannot read SAR image ({type(err).__name__}: {err})")


@dataclasses.dataclass
class SarRaster:
    """A raster as stored in its file, always shaped (H, W, bands)."""

    path: Path
    array: np.ndarray
    geo: dict | None = None  # GeoTIFF keys and tags (ModelPixelScale, ModelTiepoint, ProjectedCSTypeGeoKey...), or None
    nodata: float | None = None  # the GDAL_NODATA tag, or None

    @property
    def num_bands(self) -> int:
        return self.array.shape[2]


def guess_axes(shape: tuple[int, ...]) -> str | None:
    """tifffile-style axes of an in-memory array: (H, W) -> "YX"; 3-D -> "SYX" (bands first) when the first axis has at
    most MAX_GUESSED_BANDS entries and the last more, else "YXS" (bands last); None for other ranks."""
    if len(shape) == 2:
        return "YX"
    if len(shape) == 3:
        return "SYX" if shape[0] <= MAX_GUESSED_BANDS < shape[-1] else "YXS"
    return None


def bands_last(array: np.ndarray, source: str | Path, axes: str | None = None) -> np.ndarray:
    """The one band-layout rule: a raster -> (H, W, bands).

    axes: the layout as tifffile names it for a file: "YX" (one band), "YXS" (bands last), or three axes ending in
    "YX" (bands first: "SYX" planar samples, "IYX"/"QYX"/"CYX"... one page per band); None: guessed from the shape of
    an in-memory array (`guess_axes`). Raises SarRasterError for other layouts and for empty rasters.
    """
    array = np.asarray(array)
    axes = guess_axes(array.shape) if axes is None else axes
    if axes == "YX" and array.ndim == 2:
        array = array[:, :, None]
    elif axes and len(axes) == 3 and axes.endswith("YX") and array.ndim == 3:
        array = np.moveaxis(array, 0, -1)
    elif axes != "YXS" or array.ndim != 3:
        raise SarRasterError(
            source, f"unsupported raster layout: shape {array.shape}, axes {axes!r} (expected (H, W), (H, W, bands) "
            "or (bands, H, W): TIFF axes YX, YXS, SYX or one YX page per band)"
        )
    if array.size == 0:
        raise SarRasterError(source, f"empty image (shape {array.shape})")
    return array


def pil_to_array(image: Image.Image, source: str | Path) -> np.ndarray:
    """PIL image -> (H, W, bands) array keeping SAR-relevant precision (16-bit and float modes are not squashed to 8
    bits); palette, alpha and other colour modes become L or RGB."""
    if image.mode in ("L", "RGB", "F", "I;16", "I;16B", "I;16L"):
        array = np.asarray(image)
        if image.mode.startswith("I;16"):
            array = array.astype(np.uint16)
    elif image.mode in ("LA", "La"):
        array = np.asarray(image.convert("L"))
    elif image.mode in ("RGBA", "RGBa", "P", "CMYK", "YCbCr", "1"):
        array = np.asarray(image.convert("RGB"))
    elif image.mode == "I":
        array = np.asarray(image)
        if array.size and (array.min() < 0 or array.max() > np.iinfo(np.uint16).max):
            raise SarRasterError(source, "32-bit integer image outside the uint16 range")
        array = array.astype(np.uint16)
    else:
        raise SarRasterError(source, f"unsupported PIL image mode {image.mode!r}")
    return bands_last(array, source, "YX" if array.ndim == 2 else "YXS")


def check_pixels(source: str | Path, shape: str, pixels: int, max_pixels: int | None = None) -> None:
    """SarRasterError when an image of `pixels` pixels (`shape`, width first: "40000x30000") exceeds `max_pixels` (None:
    PIL's `Image.MAX_IMAGE_PIXELS`, itself None for no limit)."""
    limit = Image.MAX_IMAGE_PIXELS if max_pixels is None else max_pixels
    if limit is not None and pixels > limit:
        raise SarRasterError(source, f"{shape} image ({pixels} pixels) exceeds the limit of {limit} pixels; refused "
                             "before decoding (a larger max_pixels or PIL.Image.MAX_IMAGE_PIXELS reads it)")


def read_pil_image(file: str | Path | io.BytesIO, source: str | Path, max_pixels: int | None = None) -> np.ndarray:
    """Decode an image file (or its bytes) fully with PIL, so truncation is caught -> (H, W, bands) (`pil_to_array`).

    The size is checked against `max_pixels` (`check_pixels`) before decoding; PIL itself still refuses images above
    twice its own `Image.MAX_IMAGE_PIXELS` (also a SarRasterError naming the file)."""
    try:
        with warnings.catch_warnings():  # PIL's own warning above MAX_IMAGE_PIXELS: check_pixels decides
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            image = Image.open(file)
        with image:
            check_pixels(source, f"{image.width}x{image.height}", image.width * image.height, max_pixels)
            image.load()
            return pil_to_array(image, source)
    except (SarRasterError, MemoryError):
        raise
    except Image.DecompressionBombError as err:
        raise SarRasterError(source, f"refused before decoding: {err}") from err
    except Exception as err:  # PIL raises many types for corrupt or truncated files
        raise _unreadable(source, err) from err


def _is_tiff(path: Path) -> bool:
    if path.suffix.lower() in TIFF_SUFFIXES:
        return True
    try:
        with open(path, "rb") as handle:
            return handle.read(4) in TIFF_MAGIC
    except OSError as err:
        raise _unreadable(path, err) from err


def _plain(value):
    """GeoTIFF metadata values as plain Python (enums become ints, arrays lists) so they serialise."""
    if isinstance(value, enum.Enum):
        return int(value.value) if isinstance(value.value, int) else str(value.value)
    if isinstance(value, np.ndarray):
        return value.tolist()
    return value


def _read_tiff(path: Path, metadata: bool, max_pixels: int | None) -> SarRaster:
    try:
        with tifffile.TiffFile(path) as tif:
            series = tif.series[0]
            axes = series.axes
            sizes = [size for size, axis in zip(series.shape, axes) if axis != "S"][::-1]  # X first; samples: bands
            check_pixels(path, "x".join(map(str, sizes)), int(np.prod(sizes, dtype=np.int64)), max_pixels)
            _check_declared_data(path, series)
            array = series.asarray()
            geo = nodata = None
            if metadata:
                if tif.is_geotiff:
                    geo = {key: _plain(value) for key, value in tif.geotiff_metadata.items()}
                nodata_tag = tif.pages[0].tags.get("GDAL_NODATA")
                nodata = float(nodata_tag.value.strip("\x00 ")) if nodata_tag is not None else None
    except (SarRasterError, MemoryError):
        raise
    except Exception as err:  # tifffile raises many types for corrupt or truncated files
        raise _unreadable(path, err) from err
    return SarRaster(path, bands_last(array, path, axes), geo, nodata)


def _check_declared_data(path: Path, series) -> None:
    """Refuse, before any buffer is allocated, a TIFF whose header places image data beyond the end of the file
    (truncated or forged), or declares fewer stored bytes than its uncompressed pixels need."""
    size = path.stat().st_size
    for page in series.pages:
        if page is None or not getattr(page, "dataoffsets", None):
            continue
        end = max(offset + count for offset, count in zip(page.dataoffsets, page.databytecounts))
        if end > size:
            raise SarRasterError(path, f"truncated or corrupt TIFF: the header places image data up to byte {end}, "
                                       f"the file has {size} bytes")
        if page.compression == 1 and sum(page.databytecounts) < page.nbytes:
            raise SarRasterError(path, f"corrupt TIFF: {page.nbytes} bytes of uncompressed pixels declared, "
                                       f"{sum(page.databytecounts)} stored")


def array_from_cell(cell, column: str = "array") -> np.ndarray:
    """The (H, W, bands) numpy array of a raster stored as array columns (sar-vlm datasets keep float dB, amplitude,
    16-bit and complex rasters so, which `datasets.Image` cannot hold: a flat `array` in C order, its `shape` and
    `unit`); complex when `unit` is "complex" (stored as real/imag band pairs). Any mapping: a row, or the `image`
    cell `dataset_scripts.loading` nests them into."""
    values = np.asarray(cell[column]).reshape(tuple(cell["shape"]))
    if cell.get("unit") == "complex":
        values = values[..., 0::2] + 1j * values[..., 1::2]
    return values


def is_raster_cell(image) -> bool:
    """Whether `image` is a raster stored as array columns (`array_from_cell`)."""
    return isinstance(image, dict) and "array" in image and "shape" in image


def read_sar_raster(path: str | Path, metadata: bool = True, max_pixels: int | None = None) -> SarRaster:
    """Read a SAR raster file with all its bands and its stored dtype -> SarRaster (array shaped (H, W, bands)).

    metadata: also read the GeoTIFF keys/tags and GDAL_NODATA of a TIFF. max_pixels: larger images are refused from
    their header, before decoding (None: PIL's `Image.MAX_IMAGE_PIXELS`; see `check_pixels`). Raises SarRasterError
    naming the file (MissingSarRasterError, also a FileNotFoundError, when it does not exist).
    """
    path = Path(path)
    if not path.is_file():
        raise MissingSarRasterError(path, "no such SAR image file")
    raster = (_read_tiff(path, metadata, max_pixels) if _is_tiff(path)
              else SarRaster(path, read_pil_image(path, path, max_pixels)))
    if raster.array.dtype.type not in SAR_DTYPES:
        names = ", ".join(np.dtype(t).name for t in SAR_DTYPES)
        raise SarRasterError(path, f"unsupported sample type {raster.array.dtype} (readable: {names})")
    return raster


__all__ = [
    "MissingSarRasterError",
    "array_from_cell",
    "is_raster_cell",
    "SarRaster",
    "SarRasterError",
    "bands_last",
    "check_pixels",
    "guess_axes",
    "pil_to_array",
    "read_pil_image",
    "read_sar_raster",
]
