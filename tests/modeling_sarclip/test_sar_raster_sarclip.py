"""The one SAR raster reader (sar_raster_sarclip) and the one radiometry module (radiometry_sarclip)."""

import io
import json
import os
import struct
import subprocess
import sys
import textwrap
import time
import zlib

import numpy as np
import pytest
import tifffile
from PIL import Image

from modeling_sarclip import SarclipImageProcessor
from modeling_sarclip.radiometry_sarclip import (
    amplitude_to_db,
    dual_pol_composite,
    percentile_stretch,
    sar_to_unit_range,
    sarclip_unit_range,
)
from modeling_sarclip.sar_raster_sarclip import (
    MissingSarRasterError,
    SarRasterError,
    bands_last,
    read_pil_image,
    read_sar_raster,
)

H, W = 20, 30


def _bands(dtype, count, seed=0):
    """(H, W, count) test raster of a SAR dtype."""
    rng = np.random.default_rng(seed)
    if dtype == "uint8":
        return rng.integers(0, 256, (H, W, count), dtype=np.uint8)
    if dtype == "uint16":
        return rng.integers(1, 65535, (H, W, count), dtype=np.uint16)
    if dtype == "float32":
        return rng.normal(-15, 5, (H, W, count)).astype(np.float32)  # dB
    return (rng.normal(size=(H, W, count)) + 1j * rng.normal(size=(H, W, count))).astype(np.complex64)


@pytest.mark.parametrize("dtype", ["uint8", "uint16", "float32", "complex64"])
@pytest.mark.parametrize("count", [1, 2, 3])
@pytest.mark.parametrize("layout", ["bands_last", "bands_first", "pages"])
def test_tiff_layouts_read_as_bands_last_with_values_as_stored(tmp_path, dtype, count, layout):
    expected = _bands(dtype, count)
    path = tmp_path / f"{dtype}_{count}_{layout}.tif"
    if count == 1:
        tifffile.imwrite(path, expected[:, :, 0])
    elif layout == "bands_last":
        tifffile.imwrite(path, expected, photometric="minisblack", planarconfig="contig")
    elif layout == "bands_first":
        tifffile.imwrite(path, np.moveaxis(expected, -1, 0), photometric="minisblack", planarconfig="separate")
    else:  # one page per band
        with tifffile.TiffWriter(path) as tif:
            for band in range(count):
                tif.write(expected[:, :, band], contiguous=True)
    raster = read_sar_raster(path)
    assert raster.array.dtype == expected.dtype and raster.array.shape == (H, W, count)
    assert raster.num_bands == count
    np.testing.assert_array_equal(raster.array, expected)
    assert raster.geo is None and raster.nodata is None


def test_in_memory_layout_rule_matches_the_file_rule(tmp_path):
    rng = np.random.default_rng(1)
    vv_vh = rng.normal(-15, 5, (2, H, W)).astype(np.float32)
    tifffile.imwrite(tmp_path / "planar.tif", vv_vh, photometric="minisblack", planarconfig="separate")
    from_file = read_sar_raster(tmp_path / "planar.tif").array
    np.testing.assert_array_equal(from_file, bands_last(vv_vh, "array"))
    np.testing.assert_array_equal(from_file, bands_last(np.moveaxis(vv_vh, 0, -1), "array"))
    assert bands_last(vv_vh[0], "array").shape == (H, W, 1)
    assert bands_last(np.zeros((3, H, W)), "array").shape == (H, W, 3)
    assert bands_last(np.zeros((H, W, 3)), "array").shape == (H, W, 3)
    processor = SarclipImageProcessor(size=24)
    out = processor([str(tmp_path / "planar.tif"), vv_vh, np.moveaxis(vv_vh, 0, -1)])["pixel_values"]
    assert out.shape == (3, 3, 24, 24)
    assert (out[0] == out[1]).all() and (out[0] == out[2]).all()
    with pytest.raises(SarRasterError, match=r"^chip 7: unsupported raster layout: shape \(1, 2, 3, 4\)"):
        bands_last(np.zeros((1, 2, 3, 4)), "chip 7")
    with pytest.raises(SarRasterError, match=r"^chip 8: empty image \(shape \(0, 5, 1\)\)"):
        bands_last(np.zeros((0, 5)), "chip 8")


def test_pil_formats_keep_precision(tmp_path, sar_data_dir):
    chip = next((sar_data_dir / "mstar_soc" / "test" / "T72").glob("*.jpeg"))
    raster = read_sar_raster(chip)
    assert raster.array.dtype == np.uint8 and raster.array.shape == (128, 128, 1) and raster.geo is None
    np.testing.assert_array_equal(raster.array[:, :, 0], np.asarray(Image.open(chip)))

    amplitude = np.random.default_rng(2).integers(0, 65535, (H, W)).astype(np.uint16)
    Image.fromarray(amplitude).save(tmp_path / "amp16.png")
    raster = read_sar_raster(tmp_path / "amp16.png")
    assert raster.array.dtype == np.uint16  # not squashed to 8 bits
    np.testing.assert_array_equal(raster.array[:, :, 0], amplitude)
    rgb = np.random.default_rng(3).integers(0, 256, (H, W, 3), dtype=np.uint8)
    Image.fromarray(rgb).save(tmp_path / "rgb.png")
    np.testing.assert_array_equal(read_pil_image(tmp_path / "rgb.png", "rgb"), rgb)


def test_recipe_float_db_one_and_two_bands():
    db = _bands("float32", 2)
    unit = sarclip_unit_range(db[:, :, :1])
    expected = np.minimum((db[:, :, 0] + 25) / 30, 1)
    assert unit.dtype == np.float32 and unit.shape == (H, W, 3)
    for channel in range(3):
        np.testing.assert_allclose(unit[:, :, channel], expected, atol=1e-6)
    db[0, 0] = (10.0, 10.0)  # above 0 dB: clipped to 1
    unit = sarclip_unit_range(db)
    vv, vh = np.minimum((db[..., 0] + 25) / 25, 1), np.minimum((db[..., 1] + 32.5) / 25, 1)
    np.testing.assert_allclose(unit, np.stack([vv, vh, (vv + vh) / 2], -1), atol=1e-6)
    assert unit[0, 0, 0] == unit[0, 0, 1] == 1.0
    assert unit.min() < 0  # no lower clip, as in the official code
    # any layout through the one layout rule
    np.testing.assert_array_equal(sar_to_unit_range(np.moveaxis(db, -1, 0)), unit)


def test_recipe_bytes_uint16_and_complex():
    three = _bands("uint8", 3)
    np.testing.assert_allclose(sarclip_unit_range(three), three / 255.0, atol=1e-7)
    two = _bands("uint8", 2)
    np.testing.assert_allclose(sarclip_unit_range(two)[..., 2], (two[..., 0] / 255 + two[..., 1] / 255) / 2, atol=1e-6)

    amplitude = _bands("uint16", 2)
    unit = sarclip_unit_range(amplitude)
    db = 20 * np.log10(amplitude.astype(np.float64))
    for band in range(2):
        low, high = np.percentile(db[..., band], [1, 99])
        np.testing.assert_allclose(unit[..., band], np.clip((db[..., band] - low) / (high - low), 0, 1), atol=1e-6)
    assert unit[..., :2].min() == 0.0 and unit[..., :2].max() == 1.0

    slc = _bands("complex64", 1)
    np.testing.assert_allclose(
        sarclip_unit_range(slc), sarclip_unit_range((20 * np.log10(np.abs(slc))).astype(np.float32)), atol=1e-5
    )
    assert amplitude_to_db(np.zeros((2, 2), np.complex64)).max() == pytest.approx(-200.0)
    assert amplitude_to_db(np.zeros((2, 2), np.uint16)).max() == 0.0


def test_recipe_errors_name_the_source():
    with pytest.raises(SarRasterError, match=r"^tile: float rasters are read as dB .* got 3"):
        sarclip_unit_range(np.zeros((4, 4, 3), np.float32), "tile")
    with pytest.raises(SarRasterError, match=r"^tile: expected a .* 1-3 bands, got shape \(4, 4, 4\)"):
        sarclip_unit_range(np.zeros((4, 4, 4), np.uint8), "tile")
    with pytest.raises(SarRasterError, match=r"^tile: unsupported pixel type int16"):
        sarclip_unit_range(np.zeros((4, 4, 1), np.int16), "tile")
    nan = np.zeros((4, 4, 1), np.float32)
    nan[1, 2] = np.inf
    with pytest.raises(SarRasterError, match=r"^tile: 1 NaN/inf pixel values"):
        sarclip_unit_range(nan, "tile")


def test_percentile_stretch_valid_mask_and_subsample():
    band = np.arange(100 * 100, dtype=np.float32).reshape(100, 100)
    unit = percentile_stretch(band)
    low, high = np.percentile(band, [1, 99])
    np.testing.assert_allclose(unit, np.clip((band - low) / (high - low), 0, 1))
    valid = np.zeros(band.shape, bool)
    valid[50:] = True  # thresholds from the lower half of the scene only
    low, high = np.percentile(band[50:], [1, 99])
    np.testing.assert_allclose(percentile_stretch(band, valid), np.clip((band - low) / (high - low), 0, 1))
    # at most 2500 samples: every 2nd row and column of the 100 x 100 band
    low, high = np.percentile(band[::2, ::2], [5, 95])
    sub = percentile_stretch(band, None, (5, 95), max_samples=2500)
    np.testing.assert_allclose(sub, np.clip((band - low) / (high - low), 0, 1))
    constant = np.full((8, 8), 3.0)
    constant[0, 0] = 4.0
    assert set(np.unique(percentile_stretch(constant))) == {0.0, 1.0}


def test_dual_pol_composite_float_and_bytes():
    pair = np.array([[[10, 13]], [[255, 254]]], np.uint8)
    np.testing.assert_array_equal(dual_pol_composite(pair)[..., 2], [[11], [254]])  # mean rounded down, no overflow
    assert dual_pol_composite(pair).dtype == np.uint8
    unit = np.array([[[0.25, 0.5]]], np.float32)
    np.testing.assert_array_equal(dual_pol_composite(unit), [[[0.25, 0.5, 0.375]]])
    with pytest.raises(ValueError, match="needs \\(H, W, 2\\)"):
        dual_pol_composite(np.zeros((2, 2, 3)))


def test_bad_files_raise_one_error_type_naming_the_file(tmp_path, sar_data_dir):
    data = (sar_data_dir / "sarclip_examples" / "example.tif").read_bytes()
    (tmp_path / "cut.tif").write_bytes(data[:5000])
    (tmp_path / "garbage.png").write_bytes(b"\x89PNG\r\n\x1a\n garbage")
    (tmp_path / "magic.dat").write_bytes(b"II*\x00garbage")  # TIFF magic, any name: read by tifffile
    with pytest.raises(SarRasterError, match=rf"^{tmp_path / 'cut.tif'}: truncated or corrupt TIFF"):
        read_sar_raster(tmp_path / "cut.tif")
    for name in ("garbage.png", "magic.dat"):
        with pytest.raises(SarRasterError, match=rf"^{tmp_path / name}: cannot read SAR image \(\w+"):
            read_sar_raster(tmp_path / name)
    tifffile.imwrite(tmp_path / "int32.tif", np.zeros((8, 8), np.int32))
    with pytest.raises(SarRasterError, match=r"int32\.tif: unsupported sample type int32"):
        read_sar_raster(tmp_path / "int32.tif")
    with pytest.raises(MissingSarRasterError, match=r"missing\.tif: no such SAR image file") as missing:
        read_sar_raster(tmp_path / "missing.tif")
    assert isinstance(missing.value, FileNotFoundError) and isinstance(missing.value, SarRasterError)
    assert missing.value.source == str(tmp_path / "missing.tif")


def test_real_geotiff_with_geo_metadata(sar_data_dir, tmp_path):
    path = sar_data_dir / "sarclip_examples" / "example.tif"
    raster = read_sar_raster(path)
    assert raster.array.shape == (224, 224, 2) and raster.array.dtype == np.float32  # VV, VH dB, bands last
    np.testing.assert_array_equal(raster.array, tifffile.imread(path))
    geo = raster.geo
    assert geo["ProjectedCSTypeGeoKey"] == 32618 and geo["GTModelTypeGeoKey"] == 1  # WGS 84 / UTM 18N, projected
    assert geo["ModelPixelScale"][:2] == [10.0, 10.0]
    assert geo["ModelTiepoint"][3:5] == pytest.approx([611870.3605161788, 4513577.479713077])
    assert json.loads(json.dumps(geo)) == geo  # plain Python values
    assert raster.nodata is None
    assert read_sar_raster(path, metadata=False).geo is None
    (tmp_path / "scene.dat").write_bytes(path.read_bytes())  # no .tif suffix: found by its magic bytes
    assert read_sar_raster(tmp_path / "scene.dat").geo == geo
    # GDAL_NODATA
    tifffile.imwrite(tmp_path / "nodata.tif", np.zeros((8, 8), np.float32), extratags=[(42113, "s", 0, "-9999")])
    assert read_sar_raster(tmp_path / "nodata.tif").nodata == -9999.0


LOAD_PROCESSOR = """
import sys
import numpy as np
sys.modules["modeling_sarclip"] = None  # the package must not be needed: the reader travels with the folder
from transformers import AutoImageProcessor
processor = AutoImageProcessor.from_pretrained(sys.argv[1], trust_remote_code=True)
np.save(sys.argv[1] + "/out.npy", processor(sys.argv[2])["pixel_values"].numpy())
print(type(processor).__module__)
"""


def test_saved_processor_carries_the_reader_and_radiometry(tmp_path, sar_data_dir):
    folder = tmp_path / "processor"
    SarclipImageProcessor().save_pretrained(folder)
    assert {"image_processing_sarclip.py", "sar_raster_sarclip.py", "radiometry_sarclip.py"} <= {
        p.name for p in folder.glob("*.py")
    }
    example = sar_data_dir / "sarclip_examples" / "example.tif"
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    env.update(HF_MODULES_CACHE=str(tmp_path / "modules"), HF_HUB_OFFLINE="1")
    result = subprocess.run([sys.executable, "-c", textwrap.dedent(LOAD_PROCESSOR), str(folder), str(example)],
                            capture_output=True, text=True, env=env, cwd=tmp_path, timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    assert result.stdout.strip().splitlines()[-1].startswith("transformers_modules.")
    expected = SarclipImageProcessor()(str(example))["pixel_values"].numpy()
    np.testing.assert_array_equal(np.load(folder / "out.npy"), expected)


def _declared_size(path, kind, width, height):
    """A tiny image file whose header declares width x height: a zlib-tiled TIFF or a PNG (a decompression bomb)."""
    if kind == "tiff":
        tifffile.imwrite(path, np.zeros((32, 32), np.uint8), tile=(16, 16), compression="zlib")
        data = bytearray(path.read_bytes())
        with tifffile.TiffFile(path) as tif:
            tags = tif.pages[0].tags
            for name, value in (("ImageWidth", width), ("ImageLength", height)):
                struct.pack_into("<H" if tags[name].dtype == 3 else "<I", data, tags[name].valueoffset, value)
    else:
        buffer = io.BytesIO()
        Image.new("L", (8, 8)).save(buffer, "PNG")
        data = bytearray(buffer.getvalue())
        struct.pack_into(">II", data, 16, width, height)  # IHDR data, then its CRC over type + data
        struct.pack_into(">I", data, 29, zlib.crc32(bytes(data[12:29])))
    path.write_bytes(bytes(data))
    return path


@pytest.mark.parametrize("kind", ["tiff", "png"])
def test_images_above_the_pixel_limit_are_refused_before_decoding(tmp_path, kind, monkeypatch):
    bomb = _declared_size(tmp_path / f"bomb.{kind[:3]}", kind, 40000, 40000)
    assert bomb.stat().st_size < 2000
    start = time.perf_counter()
    with pytest.raises(SarRasterError, match=rf"^{bomb}: (40000x40000 image \(1600000000 pixels\) exceeds the limit "
                                             r"of 89478485 pixels|refused before decoding: Image size)"):
        read_sar_raster(bomb)
    with pytest.raises(SarRasterError, match=rf"^{bomb}: "):  # the processor reads files with the same reader
        SarclipImageProcessor()(str(bomb))
    assert time.perf_counter() - start < 5  # nothing was decoded (it would allocate 1.6 GB per band)
    # between PIL's warning and error limits PIL only warns: the reader refuses, without a warning
    large = _declared_size(tmp_path / f"large.{kind[:3]}", kind, 10000, 10000)
    with pytest.raises(SarRasterError, match=r"10000x10000 image \(100000000 pixels\) exceeds the limit"):
        read_sar_raster(large)
    # the limit: max_pixels, else PIL's Image.MAX_IMAGE_PIXELS (None: no limit)
    small = tmp_path / f"small.{kind[:3]}"
    Image.fromarray(_bands("uint8", 1)[:, :, 0]).save(small)
    with pytest.raises(SarRasterError, match=r"30x20 image \(600 pixels\) exceeds the limit of 599 pixels"):
        read_sar_raster(small, max_pixels=599)
    assert read_sar_raster(small, max_pixels=600).array.shape == (H, W, 1)
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 400)
    with pytest.raises(SarRasterError, match="exceeds the limit of 400 pixels"):
        read_pil_image(io.BytesIO(small.read_bytes()), "bytes of small") if kind == "png" else read_sar_raster(small)
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", None)
    assert read_sar_raster(small).array.shape == (H, W, 1)


def test_the_reader_imports_without_torch(repo_root):
    code = ("import importlib.util, sys; sys.modules['torch'] = None; "
            "spec = importlib.util.spec_from_file_location('reader', sys.argv[1]); "
            "sys.modules['reader'] = module = importlib.util.module_from_spec(spec); spec.loader.exec_module(module)")
    result = subprocess.run([sys.executable, "-c", code, str(repo_root / "modeling_sarclip" / "sar_raster_sarclip.py")],
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr[-2000:]


def test_a_tiff_whose_header_declares_more_data_than_the_file_holds_is_refused_before_reading(tmp_path):
    """A 0.9 Gpx header in a 4 KiB file (under the 2 Gpx scene limit) is refused from its header, naming the file."""
    import os

    import tifffile

    from dataset_scripts.geovl.geotiff import read_geotiff

    path = tmp_path / "forged.tif"
    tifffile.imwrite(path, shape=(30000, 30000), dtype="uint8")
    os.truncate(path, 4096)
    for read in (read_geotiff, lambda p: read_sar_raster(p, max_pixels=2_000_000_000)):
        with pytest.raises(SarRasterError, match=r"forged\.tif: truncated or corrupt TIFF: .*900000256.*4096 bytes"):
            read(path)
