"""GLCM statistics on hand-made textures and the GLCM + KNN quality screen."""

import numpy as np
import pytest

from dataset_scripts.geovl.dynamic_range import compress_to_uint8, to_pil
from dataset_scripts.geovl.geotiff import read_geotiff
from dataset_scripts.geovl.quality import QualityConfig, glcm, glcm_statistics, screen_tiles, texture_features
from dataset_scripts.geovl.tiling import src_tiles


def naive_glcm(gray, levels=32):
    """Loop reference: symmetric counts per offset, normalised, averaged over the 4 offsets."""
    q = gray.astype(int) * levels // 256
    mats = []
    for dr, dc in ((0, 1), (-1, 1), (-1, 0), (-1, -1)):
        m = np.zeros((levels, levels))
        for r in range(q.shape[0]):
            for c in range(q.shape[1]):
                r2, c2 = r + dr, c + dc
                if 0 <= r2 < q.shape[0] and 0 <= c2 < q.shape[1]:
                    m[q[r, c], q[r2, c2]] += 1
                    m[q[r2, c2], q[r, c]] += 1
        mats.append(m / m.sum())
    return np.mean(mats, axis=0)


def test_glcm_matches_loop_reference():
    gray = np.random.default_rng(1).integers(0, 256, size=(13, 17), dtype=np.uint8)
    np.testing.assert_allclose(glcm(gray), naive_glcm(gray), atol=1e-12)


def test_constant_image():
    stats = glcm_statistics(glcm(np.full((32, 32), 77, np.uint8)))
    assert stats == {"contrast": 0.0, "homogeneity": 1.0, "energy": 1.0, "entropy": 0.0, "correlation": 1.0}


def test_checkerboard():
    board = ((np.indices((32, 32)).sum(axis=0) % 2) * 255).astype(np.uint8)
    stats = glcm_statistics(glcm(board))
    # 0 and 90 degree neighbours always differ (levels 0 vs 31), 45 and 135 degree ones never do.
    assert stats["contrast"] == pytest.approx((31**2 + 31**2 + 0 + 0) / 4)
    assert stats["homogeneity"] == pytest.approx((1 / (1 + 31**2) + 1 / (1 + 31**2) + 1 + 1) / 4)
    assert stats["energy"] == pytest.approx(4 * 0.25**2)  # four cells of 0.25
    assert stats["entropy"] == pytest.approx(2.0)
    assert stats["correlation"] == pytest.approx(0.0)


def test_vertical_stripes_and_noise():
    stripes = np.tile(np.array([0, 255], np.uint8), (32, 16))
    horizontal_only = glcm_statistics(glcm(stripes, offsets=((0, 1),)))
    vertical_only = glcm_statistics(glcm(stripes, offsets=((-1, 0),)))
    assert horizontal_only["contrast"] == pytest.approx(31**2) and horizontal_only["correlation"] == pytest.approx(-1.0)
    assert vertical_only["contrast"] == 0.0 and vertical_only["correlation"] == pytest.approx(1.0)
    noise = texture_features(np.random.default_rng(2).integers(0, 256, size=(256, 256), dtype=np.uint8))
    assert noise["entropy"] > 9.9  # log2(32 * 32) = 10 bits for independent uniform levels
    assert abs(noise["correlation"]) < 0.02
    assert noise["mean"] == pytest.approx(127.5, abs=1.5) and noise["std"] == pytest.approx(73.9, abs=1.0)


def speckle_tile(rng, size=48):
    return np.clip(rng.gamma(4.0, 25.0, size=(size, size)), 0, 255).astype(np.uint8)


def test_screen_reasons_and_counts():
    rng = np.random.default_rng(3)
    tiles = [speckle_tile(rng) for _ in range(20)]
    artefact = speckle_tile(rng)
    artefact[:, ::2] = 255  # column striping: a structurally deficient tile
    tiles += [artefact, np.full((48, 48), 12, np.uint8), speckle_tile(rng)]
    nodata = [0.0] * 22 + [0.5]
    result = screen_tiles(tiles, nodata, QualityConfig())
    assert result.reasons[20] == "knn_outlier"
    assert result.reasons[21] == "low_information"
    assert result.reasons[22] == "nodata"
    assert result.counts["screened"] == 23
    assert result.counts["kept"] + sum(result.counts["rejected"].values()) == 23
    assert result.counts["rejected"]["nodata"] == 1 and result.counts["rejected"]["low_information"] == 1
    assert result.counts["kept"] >= 18 and not result.knn_skipped
    assert len(result.features) == 23 and result.features[21]["entropy"] == 0.0


def test_knn_skipped_for_small_groups_is_reported():
    rng = np.random.default_rng(4)
    result = screen_tiles([speckle_tile(rng) for _ in range(9)], [0.0] * 9, QualityConfig(knn_k=5))
    assert result.knn_skipped and result.counts["knn_skipped"] and result.counts["kept"] == 9


def test_screen_real_geotiff_tiles(sar_data_dir):
    raster = read_geotiff(sar_data_dir / "sarclip_examples" / "example.tif")
    image8 = compress_to_uint8(raster.data, raster.valid_mask())
    tiles, _ = src_tiles(raster, 250.0)
    grays = [np.asarray(to_pil(t.window.crop(image8)).convert("L")) for t in tiles]
    result = screen_tiles(grays, [0.0] * len(grays))
    assert result.counts["screened"] == 64
    # An urban Sentinel-1 scene: textured everywhere, so only KNN outliers can be rejected, and few.
    assert set(result.counts["rejected"]) <= {"knn_outlier"}
    assert 0.8 * 64 <= result.counts["kept"] < 64
    assert all(f["entropy"] > 6 for f in result.features)
