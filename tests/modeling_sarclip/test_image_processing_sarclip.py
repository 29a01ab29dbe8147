import numpy as np
import pytest
import tifffile
import torch
from PIL import Image

from modeling_sarclip import SarclipImageProcessor
from modeling_sarclip.radiometry_sarclip import sar_to_unit_range


def _official(vv_vh_db: np.ndarray) -> np.ndarray:
    """CAESAR-Radi/SARCLIP readtif for 2-band float dB, written out independently: (3, H, W) in [-1, 1]."""
    c1 = np.minimum((vv_vh_db[..., 0] + 25) / 25, 1)
    c2 = np.minimum((vv_vh_db[..., 1] + 32.5) / 25, 1)
    return (np.stack([c1, c2, (c1 + c2) / 2]) - 0.5) * 2


def test_real_dual_pol_geotiff_follows_official_recipe(sar_data_dir):
    path = sar_data_dir / "sarclip_examples" / "example.tif"
    raw = tifffile.imread(path)
    assert raw.shape == (224, 224, 2) and raw.dtype == np.float32
    pixels = SarclipImageProcessor()(str(path))["pixel_values"]
    assert pixels.shape == (1, 3, 224, 224) and pixels.dtype == torch.float32
    np.testing.assert_allclose(pixels[0].numpy(), _official(raw.astype(np.float64)), atol=1e-6)
    assert pixels.max() <= 1.0  # upper clip; official code does not clip below


def test_single_band_float_db():
    db = np.linspace(-40, 10, 64, dtype=np.float32).reshape(8, 8)
    unit = sar_to_unit_range(db)
    expected = np.minimum((db + 25) / 30, 1)
    for channel in range(3):
        np.testing.assert_allclose(unit[..., channel], expected, atol=1e-6)


def test_real_mstar_jpeg_is_byte_recipe_without_resize(sar_data_dir):
    path = next((sar_data_dir / "mstar_soc" / "train" / "BMP2").glob("*.jpeg"))
    raw = np.asarray(Image.open(path))
    assert raw.shape == (128, 128) and raw.dtype == np.uint8
    pixels = SarclipImageProcessor(size=128)(path)["pixel_values"][0]
    expected = (raw / 255.0 - 0.5) * 2
    for channel in range(3):
        np.testing.assert_allclose(pixels[channel].numpy(), expected, atol=1e-6)


def test_real_chips_of_other_sizes_are_resized_and_cropped(sar_data_dir):
    paths = [
        next((sar_data_dir / "mstar_soc" / "train" / "D7").glob("*.jpeg")),  # 177 x 178
        next((sar_data_dir / "opensarship" / "patches").rglob("*.tif")),  # 8-bit TIFF, small
    ]
    pixels = SarclipImageProcessor(size=96)(paths)["pixel_values"]
    assert pixels.shape == (2, 3, 96, 96)
    assert pixels.min() >= -1.0 and pixels.max() <= 1.0  # bicubic overshoot is clamped to the raster's range


def test_inputs_pil_numpy_tensor_and_channels_first_agree(sar_data_dir):
    path = next((sar_data_dir / "mstar_soc" / "test" / "T72").glob("*.jpeg"))
    processor = SarclipImageProcessor(size=128)
    pil = Image.open(path)
    array = np.array(pil)
    variants = [str(path), pil, array, torch.from_numpy(array), np.stack([array] * 3), np.stack([array] * 3, -1)]
    out = processor(variants)["pixel_values"]
    for i in range(1, len(variants)):
        torch.testing.assert_close(out[i], out[0])


def test_dual_pol_bytes_and_uint16_and_complex():
    rng = np.random.default_rng(0)
    two = rng.integers(0, 256, (16, 16, 2), dtype=np.uint8)
    unit = sar_to_unit_range(two)
    np.testing.assert_allclose(unit[..., 2], (two[..., 0] / 255 + two[..., 1] / 255) / 2, atol=1e-6)

    amplitude = rng.gamma(1.0, 300.0, (32, 32)).astype(np.uint16) + 1
    unit16 = sar_to_unit_range(amplitude)
    assert unit16.min() == 0.0 and unit16.max() == 1.0
    flat_a, flat_u = amplitude.ravel(), unit16[..., 0].ravel()
    order = np.argsort(flat_a, kind="stable")
    assert np.all(np.diff(flat_u[order]) >= 0)  # monotonic in amplitude

    slc = (rng.normal(size=(8, 8)) + 1j * rng.normal(size=(8, 8))).astype(np.complex64)
    db = (20 * np.log10(np.abs(slc))).astype(np.float32)
    np.testing.assert_allclose(sar_to_unit_range(slc), sar_to_unit_range(db), atol=1e-5)


def test_bad_inputs_name_the_file(tmp_path):
    processor = SarclipImageProcessor(size=32)
    nan_file = tmp_path / "nan.tif"
    data = np.zeros((32, 32), np.float32)
    data[3, 4] = np.nan
    tifffile.imwrite(nan_file, data)
    with pytest.raises(ValueError, match=r"nan\.tif: 1 NaN/inf"):
        processor(str(nan_file))

    four_band = tmp_path / "four.tif"
    tifffile.imwrite(four_band, np.zeros((4, 32, 32), np.float32), photometric="minisblack", planarconfig="separate")
    with pytest.raises(ValueError, match=r"four\.tif: expected a .* 1-3 bands"):
        processor(str(four_band))

    three_band_float = tmp_path / "three.tif"
    tifffile.imwrite(three_band_float, np.zeros((32, 32, 3), np.float32), photometric="rgb")
    with pytest.raises(ValueError, match=r"three\.tif: float rasters .* got 3"):
        processor(str(three_band_float))

    corrupt = tmp_path / "corrupt.tif"
    corrupt.write_bytes(b"II*\x00garbage")
    with pytest.raises(ValueError, match=r"corrupt\.tif: cannot read SAR image"):
        processor(str(corrupt))

    truncated = tmp_path / "truncated.png"
    Image.fromarray(np.zeros((64, 64), np.uint8)).save(tmp_path / "ok.png")
    truncated.write_bytes((tmp_path / "ok.png").read_bytes()[:40])
    with pytest.raises(ValueError, match=r"truncated\.png: cannot read SAR image"):
        processor(str(truncated))

    with pytest.raises(FileNotFoundError, match="missing.tif"):
        processor(str(tmp_path / "missing.tif"))
    with pytest.raises(ValueError, match="image 1 of the batch: empty image"):
        processor([np.zeros((8, 8), np.uint8), np.zeros((0, 8), np.uint8)])
    with pytest.raises(ValueError, match="unsupported pixel type int64"):
        processor(np.zeros((8, 8), np.int64))
    with pytest.raises(ValueError, match="image is 8x8, smaller than 32x32"):
        processor(np.zeros((8, 8), np.uint8), do_resize=False)


def test_save_and_load(tmp_path):
    SarclipImageProcessor(size=96, do_resize=False).save_pretrained(tmp_path)
    loaded = SarclipImageProcessor.from_pretrained(tmp_path)
    assert (loaded.size, loaded.do_resize) == (96, False)


def test_dataset_normalisation_standardises_real_mstar_chips_and_round_trips(sar_data_dir, tmp_path):
    from modeling_sarclip import pixel_statistics

    paths = sorted((sar_data_dir / "mstar_soc" / "train" / "BMP2").glob("*.jpeg"))[:40]
    plain = SarclipImageProcessor(size=64)
    mean, std = pixel_statistics(plain, paths)
    assert mean[0] < -0.5 and 0.05 < std[0] < 0.3  # dark chips: the offset dominates the [-1, 1] range
    standardised = SarclipImageProcessor(size=64, image_mean=mean, image_std=std)
    raw, out = plain(paths)["pixel_values"], standardised(paths)["pixel_values"]
    torch.testing.assert_close(out, (raw - mean[0]) / std[0], atol=1e-5, rtol=1e-5)
    assert abs(out.mean().item()) < 1e-3 and abs(out.std().item() - 1) < 1e-2
    standardised.save_pretrained(tmp_path)
    reloaded = SarclipImageProcessor.from_pretrained(tmp_path)
    assert reloaded.image_mean == mean and reloaded.image_std == std
    torch.testing.assert_close(reloaded(paths[:4])["pixel_values"], out[:4])
    assert plain.image_mean is None  # the official recipe stays the default


@pytest.mark.parametrize("kwargs", [{"image_mean": [0.0] * 3}, {"image_mean": [0.0] * 2, "image_std": [1.0] * 2},
                                    {"image_mean": [0.0] * 3, "image_std": [1.0, 0.0, 1.0]}])
def test_bad_normalisation_is_refused(kwargs):
    with pytest.raises(ValueError, match="image_mean"):
        SarclipImageProcessor(**kwargs)


def test_native_resolution_crop_keeps_the_raster_pixels():
    chip = (np.arange(40 * 48) % 251).astype(np.uint8).reshape(40, 48)
    pixels = SarclipImageProcessor(size=32, do_resize=False)(chip)["pixel_values"][0, 0]
    expected = torch.from_numpy(chip[4:36, 8:40].astype(np.float32) / 255 * 2 - 1)
    assert torch.allclose(pixels, expected)
    # a margin gives the wider centre square at the same scale; the model-size centre of it is the plain crop
    wide = SarclipImageProcessor(size=32, do_resize=False)(chip, margin=4)["pixel_values"][0, 0]
    assert wide.shape == (40, 40) and torch.equal(wide[4:36, 4:36], pixels)


def test_per_image_standardization_is_per_chip_saved_and_mapped_to_a_target(tmp_path):
    dark, bright = np.full((16, 16), 20, np.uint8), np.full((16, 16), 200, np.uint8)
    dark[4:8, 4:8], bright[4:8, 4:8] = 60, 240
    processor = SarclipImageProcessor(size=16, per_image_standardize=True)
    pixels = processor([dark, bright])["pixel_values"]
    assert torch.allclose(pixels.mean(dim=(1, 2, 3)), torch.zeros(2), atol=1e-5)
    assert torch.allclose(pixels.std(dim=(1, 2, 3), unbiased=False), torch.ones(2), atol=1e-4)
    assert processor.standardization == "per_image"
    processor.set_standardization("per_image", target=[-0.3, 0.2])
    mapped = processor([dark])["pixel_values"]
    assert abs(mapped.mean().item() + 0.3) < 1e-5 and abs(mapped.std(unbiased=False).item() - 0.2) < 1e-5
    processor.save_pretrained(tmp_path)
    loaded = SarclipImageProcessor.from_pretrained(tmp_path)
    assert torch.equal(loaded([dark])["pixel_values"], mapped) and loaded.per_image_target == [-0.3, 0.2]
    # unstandardised output for augmentation, standardised afterwards: the same as standardising at once
    raw = loaded([dark], standardize=False)["pixel_values"]
    assert raw.min() < -0.5 and torch.allclose(loaded.standardize(raw.clone()), mapped)
    with pytest.raises(ValueError, match="choose one standardisation"):
        SarclipImageProcessor(per_image_standardize=True, image_mean=[0.0] * 3, image_std=[1.0] * 3)
    with pytest.raises(ValueError, match="standardize must be one of"):
        processor.set_standardization("chip")


def test_reference_statistics_describe_what_the_model_sees():
    from modeling_sarclip.image_processing_sarclip import reference_statistics

    chips = [np.full((8, 8), v, np.uint8) for v in (0, 255)]
    chips[0][0, 0] = 255
    mean, spread = reference_statistics(SarclipImageProcessor(size=8), chips)
    pixels = SarclipImageProcessor(size=8)(chips)["pixel_values"].double()
    assert mean == pytest.approx(pixels.mean().item(), abs=1e-6)
    assert spread == pytest.approx(pixels.std(dim=(1, 2, 3), unbiased=False).mean().item(), abs=1e-5)
