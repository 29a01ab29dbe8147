"""What an installed package shows: one version everywhere, typing markers shipped, a changelog."""

from importlib.metadata import version
from pathlib import Path

import pytest

import dataset_scripts
import modeling_knowlip
import modeling_sarclip
import train

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.parametrize("package", [modeling_sarclip, modeling_knowlip, dataset_scripts, train])
def test_one_version_and_a_typing_marker(package):
    assert package.__version__ == version("sar-vlm")
    assert (Path(package.__file__).parent / "py.typed").is_file()


def test_changelog_names_the_current_version():
    assert f"## {version('sar-vlm')}" in (ROOT / "CHANGELOG.md").read_text()
