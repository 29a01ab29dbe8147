"""Fixtures of the dataset_scripts tests: built datasets are loaded with a per-test cache (never ~/.cache)."""

import datasets
import pytest

from dataset_scripts import build_dataset


@pytest.fixture
def load_built(tmp_path):
    """``load_built(out_dir)`` -> ``datasets.load_dataset(out_dir)`` with the cache inside tmp_path."""

    def load(out_dir):
        return datasets.load_dataset(str(out_dir), cache_dir=str(tmp_path / "hf_cache"))

    return load


@pytest.fixture(scope="session")
def mstar_soc_build(sar_data_dir, tmp_path_factory):
    """The full real MSTAR SOC set built once: (out_dir, BuildReport)."""
    out = tmp_path_factory.mktemp("mstar_soc") / "out"
    report = build_dataset("mstar", sar_data_dir / "mstar_soc", out)
    return out, report
