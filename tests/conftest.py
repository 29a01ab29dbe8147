"""Shared fixtures: the real SAR data folder (../shared/data by default, SAR_DATA_DIR overrides)."""

import os
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[1]
DEFAULT_SAR_DATA_DIR = REPO_ROOT.parent / "shared" / "data"


@pytest.fixture(scope="session")
def sar_data_dir() -> Path:
    path = Path(os.environ.get("SAR_DATA_DIR", DEFAULT_SAR_DATA_DIR))
    if not path.is_dir():
        pytest.skip(f"real SAR data folder not found: {path} (set SAR_DATA_DIR)")
    return path


@pytest.fixture(scope="session")
def repo_root() -> Path:
    return REPO_ROOT
