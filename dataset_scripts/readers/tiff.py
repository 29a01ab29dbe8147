"""(Geo)TIFF rasters for the dataset builders: the model folder's one SAR raster reader
(modeling_sarclip/sar_raster_sarclip.py: all bands, values as stored, (H, W, bands), GeoTIFF keys and tags), with its
errors raised as DatasetBuildError (same message) so builders skip and report the file."""

from __future__ import annotations

from pathlib import Path

from modeling_sarclip.sar_raster_sarclip import SarRaster, SarRasterError, read_sar_raster

from ..errors import DatasetBuildError

TiffRaster = SarRaster  # path, array (H, W, bands) as stored, geo (GeoTIFF keys/tags or None), nodata


def read_tiff(path: str | Path) -> SarRaster:
    """Read all bands of a TIFF (PIL would silently keep only the first band of multi-band files).

    Raises DatasetBuildError naming the file for missing, corrupt or truncated files and unsupported layouts/dtypes.
    """
    try:
        return read_sar_raster(path)
    except SarRasterError as err:
        raise DatasetBuildError(err.source, err.problem) from err
