"""The utility layer every part of the package imports (and that imports none of them): atomic writes
(`sar_utils.atomic`), the command-line conventions (`sar_utils.command_line`) and the Hub upload (`sar_utils.hub`)."""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("sar-vlm")  # the one version number: pyproject.toml's
except PackageNotFoundError:  # run from a checkout that was never installed
    __version__ = "0+unknown"
