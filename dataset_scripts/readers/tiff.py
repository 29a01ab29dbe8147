"""(Geo)TIFF rasters read with tifffile: 8/16-bit, float32 dB, multi-band and complex, bands last."""

from __future__ import annotations

import dataclasses
import enum
import struct
from pathlib import Path

import numpy as np
import tifffile

from ..errors import DatasetBuildError

SUPPORTED_DTYPES = (np.uint8, np.uint16, np.int16, np.float32, np.float64, np.complex64, np.complex128)


@dataclasses.dataclass
class TiffRaster:
    """Raster values exactly as stored, always shaped (H, W, bands)."""

    path: Path
    array: np.ndarray
    geo: dict | None  # GeoTIFF keys and tags (ModelPixelScale, ModelTiepoint, ProjectedCSTypeGeoKey...), or None

    @property
    def num_bands(self) -> int:
        return self.array.shape[2]


def _plain(value):
    """GeoTIFF metadata values as plain Python (enums become ints) so they serialise."""
    if isinstance(value, enum.Enum):
        return int(value.value) if isinstance(value.value, int) else str(value.value)
    if isinstance(value, np.ndarray):
        return value.tolist()
    return value


def _bands_last(path: Path, array: np.ndarray, axes: str) -> np.ndarray:
    if axes == "YX":
        return array[:, :, None]
    if axes == "YXS":
        return array
    if axes in ("SYX", "QYX", "IYX", "CYX"):  # planar samples, or one page per band
        return np.moveaxis(array, 0, -1)
    raise DatasetBuildError(path, f"unsupported TIFF layout with axes {axes!r} (expected YX, YXS, SYX or pages of YX)")


def read_tiff(path: str | Path) -> TiffRaster:
    """Read all bands of a TIFF (PIL would silently keep only the first band of multi-band files).

    Raises DatasetBuildError naming the file for missing, corrupt or truncated files and unsupported layouts/dtypes.
    """
    path = Path(path)
    if not path.is_file():
        raise DatasetBuildError(path, "file does not exist")
    try:
        with tifffile.TiffFile(path) as tif:
            series = tif.series[0]
            array = series.asarray()
            axes = series.axes
            geo = {key: _plain(value) for key, value in tif.geotiff_metadata.items()} if tif.is_geotiff else None
    except (tifffile.TiffFileError, OSError, ValueError, IndexError, KeyError, struct.error) as err:
        raise DatasetBuildError(path, f"corrupt or unreadable TIFF ({type(err).__name__}: {err})") from err
    if array.dtype.type not in SUPPORTED_DTYPES:
        raise DatasetBuildError(path, f"unsupported TIFF sample type {array.dtype}")
    if array.size == 0:
        raise DatasetBuildError(path, "TIFF has zero pixels")
    return TiffRaster(path=path, array=_bands_last(path, array, axes), geo=geo)

