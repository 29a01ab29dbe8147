"""Read a GeoTIFF with its geo-referencing (affine transform, CRS as EPSG code, pixel size, nodata).

The raster, its GeoTIFF keys and tags (ModelPixelScale + ModelTiepoint, or ModelTransformation, and the
GeoKeyDirectory) and GDAL_NODATA come from the project's one SAR raster reader
(``modeling_sarclip/sar_raster_sarclip.py``, tifffile); this module turns them into an affine transform and a CRS,
whose maths goes through ``pyproj``.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property
from pathlib import Path

import numpy as np
import pyproj

from modeling_sarclip.sar_raster_sarclip import SarRasterError, read_sar_raster

WGS84_EPSG = 4326
SCENE_MAX_PIXELS = 2_000_000_000
_USER_DEFINED = 32767
_RASTER_PIXEL_IS_POINT = 2


class GeoTiffError(SarRasterError):
    """A GeoTIFF lacks, or has unsupported, geo-referencing. ``str(error)`` is ``"<file>: <problem>"``."""


@dataclass(frozen=True)
class AffineTransform:
    """Pixel (col, row) -> CRS (x, y): ``x = a*col + b*row + c``, ``y = d*col + e*row + f``.

    Same coefficient order as GDAL/rasterio's ``Affine``; (col, row) = (0, 0) is the top-left corner
    of the top-left pixel.
    """

    a: float
    b: float
    c: float
    d: float
    e: float
    f: float

    def __call__(self, col, row):
        col = np.asarray(col, dtype=np.float64)
        row = np.asarray(row, dtype=np.float64)
        return self.a * col + self.b * row + self.c, self.d * col + self.e * row + self.f

    def shifted(self, col_off: float, row_off: float) -> "AffineTransform":
        """The transform of a window whose top-left pixel is (col_off, row_off) in this raster."""
        x0, y0 = self(col_off, row_off)
        return AffineTransform(self.a, self.b, float(x0), self.d, self.e, float(y0))

    def to_tuple(self) -> tuple[float, float, float, float, float, float]:
        return (self.a, self.b, self.c, self.d, self.e, self.f)


@dataclass(frozen=True)
class GeoRaster:
    """A geo-referenced raster: ``data`` is (height, width, bands); ``nodata`` is the GDAL_NODATA value."""

    path: Path
    data: np.ndarray
    transform: AffineTransform
    epsg: int
    nodata: float | None = None

    @property
    def height(self) -> int:
        return self.data.shape[0]

    @property
    def width(self) -> int:
        return self.data.shape[1]

    @property
    def bands(self) -> int:
        return self.data.shape[2]

    @property
    def pixel_size(self) -> tuple[float, float]:
        """Ground size of one pixel along (columns, rows), in CRS units (metres for projected CRSs)."""
        t = self.transform
        return float(np.hypot(t.a, t.d)), float(np.hypot(t.b, t.e))

    @cached_property
    def crs(self) -> pyproj.CRS:
        return pyproj.CRS.from_epsg(self.epsg)

    @cached_property
    def _to_wgs84(self) -> pyproj.Transformer:
        return pyproj.Transformer.from_crs(self.crs, pyproj.CRS.from_epsg(WGS84_EPSG), always_xy=True)

    def pixel_to_lonlat(self, col, row):
        """WGS84 (lon, lat) in degrees of pixel coordinates (col, row); corners are integer coordinates."""
        x, y = self.transform(col, row)
        return self._to_wgs84.transform(x, y)

    def valid_mask(self) -> np.ndarray:
        """(height, width) bool: pixels that are finite and not nodata in every band."""
        valid = np.all(np.isfinite(self.data), axis=2) if self.data.dtype.kind == "f" else np.ones(
            self.data.shape[:2], dtype=bool
        )
        if self.nodata is not None:
            valid &= ~np.any(self.data == self.nodata, axis=2)
        return valid


def read_geotiff(path: str | Path, max_pixels: int = SCENE_MAX_PIXELS) -> GeoRaster:
    """Read the first image of a GeoTIFF and its geo-referencing.

    Whole scenes are read (a Sentinel-1 IW GRD scene is about 400 Mpx), so the pixel limit is a scene's, not a chip's
    (`max_pixels`, default 2 Gpx; larger files are refused from their header, before any decoding).
    Raises ``SarRasterError`` naming the file when it cannot be read, ``GeoTiffError`` (a SarRasterError) when it is
    not (or not supportedly) geo-referenced.
    """
    raster = read_sar_raster(path, max_pixels=max_pixels)
    if not raster.geo:
        raise GeoTiffError(raster.path, "no GeoTIFF tags (GeoKeyDirectory) found; the file is not geo-referenced")
    return GeoRaster(
        path=raster.path,
        data=raster.array,
        transform=_transform_from_geokeys(raster.geo, raster.path),
        epsg=_epsg_from_geokeys(raster.geo, raster.path),
        nodata=raster.nodata,
    )


def _transform_from_geokeys(geokeys: dict, path: Path) -> AffineTransform:
    if "ModelTransformation" in geokeys:
        m = np.asarray(geokeys["ModelTransformation"], dtype=np.float64).reshape(4, 4)
        transform = AffineTransform(*map(float, (m[0, 0], m[0, 1], m[0, 3], m[1, 0], m[1, 1], m[1, 3])))
    elif "ModelPixelScale" in geokeys and "ModelTiepoint" in geokeys:
        tiepoints = np.asarray(geokeys["ModelTiepoint"], dtype=np.float64).reshape(-1, 6)
        if len(tiepoints) != 1:
            raise GeoTiffError(
                path, f"{len(tiepoints)} tie points (ground control points) found; only a single tie point with a "
                "pixel scale defines an affine transform"
            )
        i, j, _, x, y, _ = tiepoints[0]
        sx, sy = geokeys["ModelPixelScale"][:2]
        # GeoTIFF's pixel scale is positive for north-up images: y decreases as rows increase.
        transform = AffineTransform(*map(float, (sx, 0.0, x - i * sx, 0.0, -sy, y + j * sy)))
    else:
        raise GeoTiffError(path, "neither ModelTransformation nor ModelPixelScale + ModelTiepoint tags present")
    if int(geokeys.get("GTRasterTypeGeoKey", 1)) == _RASTER_PIXEL_IS_POINT:
        # PixelIsPoint: the model coordinates refer to pixel centres; shift by half a pixel so that
        # integer pixel coordinates are pixel corners (the GDAL convention).
        transform = transform.shifted(-0.5, -0.5)
    return transform


def _epsg_from_geokeys(geokeys: dict, path: Path) -> int:
    model_type = int(geokeys.get("GTModelTypeGeoKey", 0))
    key = {1: "ProjectedCSTypeGeoKey", 2: "GeographicTypeGeoKey"}.get(model_type)
    if key is None:
        raise GeoTiffError(path, f"GTModelTypeGeoKey={model_type} is neither projected (1) nor geographic (2)")
    if key not in geokeys:
        raise GeoTiffError(path, f"{key} missing; cannot tell the coordinate reference system")
    epsg = int(geokeys[key])
    if epsg == _USER_DEFINED:
        raise GeoTiffError(path, f"user-defined {key} (32767) is not supported; only EPSG-coded CRSs are")
    return epsg
