"""GeoTIFF geo-referencing, SRC tiling geometry and 8-bit compression, on the real SARCLIP example GeoTIFF."""

import math

import numpy as np
import pytest
import tifffile

from dataset_scripts.geovl.dynamic_range import compress_to_uint8, to_pil
from dataset_scripts.geovl.geotiff import GeoTiffError, read_geotiff
from dataset_scripts.geovl.tiling import PAPER_TILE_SIDE_M, multiscale_src_tiles, src_tile_size_px, src_tiles
from modeling_sarclip.sar_raster_sarclip import SarRasterError
from tests.conftest import write_geotiff

TIEPOINT_E, TIEPOINT_N = 611870.3605161788, 4513577.479713077


def utm_north_to_lonlat(easting, northing, zone):
    """Independent UTM -> WGS84 inverse (Snyder 1987, USGS PP 1395, eqs. 8-12 .. 8-25); ~1e-8 deg here."""
    a, f, k0 = 6378137.0, 1 / 298.257223563, 0.9996
    e2 = f * (2 - f)
    ep2 = e2 / (1 - e2)
    x, m = easting - 500000.0, northing / k0
    mu = m / (a * (1 - e2 / 4 - 3 * e2**2 / 64 - 5 * e2**3 / 256))
    e1 = (1 - math.sqrt(1 - e2)) / (1 + math.sqrt(1 - e2))
    phi1 = (
        mu
        + (3 * e1 / 2 - 27 * e1**3 / 32) * math.sin(2 * mu)
        + (21 * e1**2 / 16 - 55 * e1**4 / 32) * math.sin(4 * mu)
        + (151 * e1**3 / 96) * math.sin(6 * mu)
        + (1097 * e1**4 / 512) * math.sin(8 * mu)
    )
    s, c, t = math.sin(phi1), math.cos(phi1), math.tan(phi1)
    n1 = a / math.sqrt(1 - e2 * s * s)
    t1, c1 = t * t, ep2 * c * c
    r1 = a * (1 - e2) / (1 - e2 * s * s) ** 1.5
    d = x / (n1 * k0)
    lat = phi1 - (n1 * t / r1) * (
        d**2 / 2
        - (5 + 3 * t1 + 10 * c1 - 4 * c1**2 - 9 * ep2) * d**4 / 24
        + (61 + 90 * t1 + 298 * c1 + 45 * t1**2 - 252 * ep2 - 3 * c1**2) * d**6 / 720
    )
    lon0 = math.radians(zone * 6 - 183)
    lon = lon0 + (d - (1 + 2 * t1 + c1) * d**3 / 6 + (5 - 2 * c1 + 28 * t1 - 3 * c1**2 + 8 * ep2 + 24 * t1**2) * d**5 / 120) / c
    return math.degrees(lon), math.degrees(lat)


@pytest.fixture(scope="module")
def example(sar_data_dir):
    return read_geotiff(sar_data_dir / "sarclip_examples" / "example.tif")


def test_reads_geo_referencing_of_real_geotiff(example):
    assert example.data.shape == (224, 224, 2) and example.data.dtype == np.float32
    assert example.epsg == 32618  # WGS 84 / UTM zone 18N
    assert example.pixel_size == (10.0, 10.0)
    t = example.transform
    assert (t.a, t.b, t.d, t.e) == (10.0, 0.0, 0.0, -10.0)
    assert (t.c, t.f) == pytest.approx((TIEPOINT_E, TIEPOINT_N), abs=1e-9)
    assert example.nodata is None and example.valid_mask().all()
    lon, lat = example.pixel_to_lonlat(0, 0)
    assert (lon, lat) == pytest.approx(utm_north_to_lonlat(TIEPOINT_E, TIEPOINT_N, 18), abs=1e-6)


def test_src_tile_size_rule():
    # Paper 3.1: 1 m -> 1024 px and 0.2 m -> 5120 px, both "1 km^2" (a 1024 m side).
    assert PAPER_TILE_SIDE_M == 1024.0
    assert src_tile_size_px(1.0) == 1024
    assert src_tile_size_px(0.2) == 5120
    assert src_tile_size_px(3.0) == 341  # Hongtu-1: 341.33 rounds to the nearest pixel
    assert src_tile_size_px(10.0, 500.0) == 50
    assert src_tile_size_px(10.0, 15.0) == 2  # 1.5 rounds half up
    with pytest.raises(ValueError, match="smaller than one"):
        src_tile_size_px(10.0, 4.0)


def test_src_tiles_geometry_on_real_geotiff(example):
    tiles, n_partial = src_tiles(example, 500.0, id_prefix="example")
    # 224 px = 4 full 50 px tiles + 24 px per axis: 16 tiles, 25 - 16 = 9 border windows dropped.
    assert len(tiles) == 16 and n_partial == 9
    assert {(t.window.height, t.window.width) for t in tiles} == {(50, 50)}
    assert {t.ground_size_m for t in tiles} == {(500.0, 500.0)}
    assert [(t.window.row_off, t.window.col_off) for t in tiles[:5]] == [(0, 0), (0, 50), (0, 100), (0, 150), (50, 0)]
    for tile in tiles:
        e0 = TIEPOINT_E + 10.0 * tile.window.col_off
        n0 = TIEPOINT_N - 10.0 * tile.window.row_off
        assert tile.transform.to_tuple() == pytest.approx((10.0, 0.0, e0, 0.0, -10.0, n0))
        corners = [utm_north_to_lonlat(e0 + dx, n0 - dy, 18) for dx in (0, 500) for dy in (0, 500)]
        lons, lats = zip(*corners)
        assert tile.bounds_lonlat == pytest.approx((min(lons), min(lats), max(lons), max(lats)), abs=1e-6)
        lon, lat = tile.center_lonlat
        assert (lon, lat) == pytest.approx(utm_north_to_lonlat(e0 + 250, n0 - 250, 18), abs=1e-6)
        lon_min, lat_min, lon_max, lat_max = tile.bounds_lonlat
        assert lon_min < lon < lon_max and lat_min < lat < lat_max
        # 500 m is about 0.0045 deg of latitude and 0.0059 deg of longitude at 40.8 N
        assert lat_max - lat_min == pytest.approx(500 / 111_000, rel=0.02)
        assert lon_max - lon_min == pytest.approx(500 / (111_320 * math.cos(math.radians(lat))), rel=0.02)
    # Neighbouring tiles meet: tile (0,1)'s top-left corner is tile (0,0)'s top-right corner.
    assert tiles[1].transform(0, 0) == pytest.approx(tiles[0].transform(50, 0))
    assert len({t.tile_id for t in tiles}) == 16


def test_multiscale_tiles_nest(example):
    tiles, partial = multiscale_src_tiles(example, (1000.0, 500.0, 250.0), id_prefix="example_")
    by_scale = {s: [t for t in tiles if t.scale == s] for s in ("large", "medium", "small")}
    assert [len(v) for v in by_scale.values()] == [4, 16, 64]
    assert partial == {"large": 5, "medium": 0, "small": 0}
    windows = {t.tile.tile_id: t.tile.window for t in tiles}
    assert all(t.parent_id is None for t in by_scale["large"])
    for t in by_scale["medium"] + by_scale["small"]:
        parent, child = windows[t.parent_id], t.tile.window
        assert parent.row_off <= child.row_off and child.row_off + child.height <= parent.row_off + parent.height
        assert parent.col_off <= child.col_off and child.col_off + child.width <= parent.col_off + parent.width
    order = [t.tile.tile_id for t in tiles]
    assert all(order.index(t.parent_id) < order.index(t.tile.tile_id) for t in by_scale["small"])
    with pytest.raises(ValueError, match="strictly decreasing"):
        multiscale_src_tiles(example, (500.0, 500.0, 250.0))


def test_pixel_is_point_geographic_crs_and_bad_files(tmp_path):
    # Projected UTM 33N, RasterPixelIsPoint: tie point at the centre of pixel (0, 0).
    keys = (1, 1, 0, 3, 1024, 0, 1, 1, 1025, 0, 1, 2, 3072, 0, 1, 32633)
    write_geotiff(tmp_path / "point.tif", np.ones((8, 8), np.uint16), keys, nodata=0)
    raster = read_geotiff(tmp_path / "point.tif")
    assert raster.epsg == 32633 and raster.nodata == 0.0
    assert (raster.transform.c, raster.transform.f) == (499995.0, 4500005.0)
    # Geographic (EPSG:4326, degrees): geo-referenced, but SRC needs metres.
    keys = (1, 1, 0, 2, 1024, 0, 1, 2, 2048, 0, 1, 4326)
    write_geotiff(tmp_path / "geo.tif", np.ones((8, 8), np.uint16), keys, pixel_m=(0.001, 0.001), origin=(10.0, 50.0))
    geo = read_geotiff(tmp_path / "geo.tif")
    assert geo.epsg == 4326 and geo.pixel_to_lonlat(8, 8) == pytest.approx((10.008, 49.992))
    with pytest.raises(ValueError, match="geo.tif: SRC tiling needs a projected CRS in metres"):
        src_tiles(geo, 1000.0)
    tifffile.imwrite(tmp_path / "plain.tif", np.ones((8, 8), np.uint8))
    with pytest.raises(GeoTiffError, match="plain.tif: no GeoTIFF tags"):
        read_geotiff(tmp_path / "plain.tif")
    # the raster comes from the one SAR reader: its layout rule (bands first -> bands last) and its errors
    planes = np.stack([np.full((8, 8), 1.0, np.float32), np.full((8, 8), 2.0, np.float32)])
    keys = (1, 1, 0, 3, 1024, 0, 1, 1, 1025, 0, 1, 1, 3072, 0, 1, 32633)
    write_geotiff(tmp_path / "planar.tif", planes, keys)
    planar = read_geotiff(tmp_path / "planar.tif")
    assert planar.data.shape == (8, 8, 2) and (planar.data[..., 1] == 2.0).all() and planar.epsg == 32633
    (tmp_path / "cut.tif").write_bytes((tmp_path / "planar.tif").read_bytes()[:300])
    with pytest.raises(SarRasterError, match="cut.tif: truncated or corrupt TIFF"):
        read_geotiff(tmp_path / "cut.tif")
    assert issubclass(GeoTiffError, SarRasterError)


def test_db_compression_to_uint8(example):
    u8 = compress_to_uint8(example.data, example.valid_mask())
    assert u8.shape == (224, 224, 2) and u8.dtype == np.uint8
    for band in range(2):
        v, b = example.data[:, :, band], u8[:, :, band]
        # The 1st/99th percentiles are the thresholds (this tile was clipped at 0 dB upstream, so 6 % of
        # its VV pixels equal the 99th percentile and saturate).
        lo, hi = np.percentile(v, [1, 99])
        assert (b[v <= lo] == 0).all() and (b[v >= hi] == 255).all()
        assert 0.005 < (b == 0).mean() < 0.02
        inside = (v > lo) & (v < hi)
        expected = np.rint((v[inside] - lo) / (hi - lo) * 255)
        assert np.abs(b[inside].astype(float) - expected).max() <= 1
    image = to_pil(u8)
    assert image.mode == "RGB" and np.array_equal(np.asarray(image)[:, :, 2], (u8[:, :, 0].astype(int) + u8[:, :, 1]) // 2)


def test_linear_compression_nodata_and_uint8_passthrough():
    rng = np.random.default_rng(0)
    amplitude = rng.gamma(1.0, 300.0, size=(64, 64, 1)).astype(np.uint16) + 1
    amplitude[:4] = 0  # nodata rows
    valid = np.ones((64, 64), bool)
    valid[:4] = False
    u8 = compress_to_uint8(amplitude, valid)
    assert (u8[:4] == 0).all()
    # log compression is monotone: a brighter amplitude never maps to a darker grey level
    order = np.argsort(amplitude[4:, :, 0], axis=None)
    assert (np.diff(u8[4:, :, 0].ravel()[order].astype(int)) >= 0).all()
    assert compress_to_uint8(u8, valid) is u8
    with pytest.raises(ValueError, match="no valid pixel"):
        compress_to_uint8(amplitude, np.zeros((64, 64), bool))
