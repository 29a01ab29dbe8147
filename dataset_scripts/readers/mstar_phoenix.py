"""Raw MSTAR chips: an ASCII Phoenix header, then big-endian float32 magnitude, then phase (radians)."""

from __future__ import annotations

import dataclasses
import hashlib
from pathlib import Path

import numpy as np

from ..errors import DatasetBuildError

HEADER_START = b"[PhoenixHeaderVer"
HEADER_END = b"[EndofPhoenixHeader]"

# Header fields converted to typed values; every other field stays a string. The list is explicit because
# some fields look numeric in one file and not in another (TargetSerNum is "9563" or "c21").
INT_FIELDS = frozenset({
    "PhoenixHeaderLength", "PhoenixSigSize", "PhoenixSigNum", "native_header_length",
    "NumberOfColumns", "NumberOfRows",
})
FLOAT_FIELDS = frozenset({
    "TargetAz", "TargetRoll", "TargetPitch", "TargetYaw",
    "DesiredDepression", "DesiredGroundPlaneSquint", "DesiredSlantPlaneSquint", "DesiredRange",
    "DesiredAimpointLatitude", "DesiredAimpointLongitude", "DesiredAimpointElevation",
    "MeasuredDepression", "MeasuredGroundPlaneSquint", "MeasuredSlantPlaneSquint", "MeasuredRange",
    "MeasuredAimpointLatitude", "MeasuredAimpointLongitude", "MeasuredAimpointElevation",
    "MeasuredAntennaLatitude", "MeasuredAntennaLongitude", "MeasuredAircraftHeading", "MeasuredAircraftAltitude",
    "SensorCalibrationFactor", "Range3dBWidth", "CrossRange3dBWidth", "X_Velocity",
    "RangeResolution", "CrossRangeResolution", "RangePixelSpacing", "CrossRangePixelSpacing",
    "AverageImageCalFactor",
})
REQUIRED_FIELDS = ("PhoenixHeaderLength", "NumberOfRows", "NumberOfColumns")


@dataclasses.dataclass
class MstarPhoenixChip:
    """One raw MSTAR chip: values exactly as stored (converted to native-endian float32)."""

    path: Path
    header: dict[str, int | float | str]
    magnitude: np.ndarray  # float32 (rows, cols), linear amplitude
    phase: np.ndarray  # float32 (rows, cols), radians

    @property
    def complex(self) -> np.ndarray:
        """complex64 (rows, cols) = magnitude * exp(i * phase)."""
        return (self.magnitude * np.exp(1j * self.phase)).astype(np.complex64)

    @property
    def target_type(self) -> str:
        return str(self.header.get("TargetType", ""))

    @property
    def depression_deg(self) -> float | None:
        return self.header.get("DesiredDepression")

    @property
    def azimuth_deg(self) -> float | None:
        return self.header.get("TargetAz")


def parse_phoenix_header(path: str | Path, data: bytes) -> dict[str, int | float | str]:
    """Parse the ``Key= value`` lines between the Phoenix start and end markers into typed values."""
    start = data.find(HEADER_START, 0, 64)
    if start < 0:
        raise DatasetBuildError(path, "not a raw MSTAR file: no '[PhoenixHeaderVer' marker at the start")
    end = data.find(HEADER_END, start)
    if end < 0:
        raise DatasetBuildError(path, "truncated Phoenix header: no '[EndofPhoenixHeader]' marker")
    header: dict[str, int | float | str] = {}
    for line in data[start:end].decode("ascii", errors="replace").splitlines()[1:]:
        key, sep, value = line.partition("=")
        if not sep:
            continue
        key, value = key.strip(), value.strip()
        try:
            header[key] = int(value) if key in INT_FIELDS else float(value) if key in FLOAT_FIELDS else value
        except ValueError as err:
            raise DatasetBuildError(path, f"header field {key} has a non-numeric value {value!r}") from err
    missing = [key for key in REQUIRED_FIELDS if key not in header]
    if missing:
        raise DatasetBuildError(path, f"Phoenix header lacks {', '.join(missing)}")
    return header


def read_mstar_phoenix(path: str | Path, verify_md5: bool = True) -> MstarPhoenixChip:
    """Read a raw MSTAR Phoenix file, checking its size and (if present) the header's Chip_MD5_CheckSum.

    The payload starts at ``PhoenixHeaderLength + native_header_length`` and holds rows*cols big-endian float32
    magnitudes followed by as many phases. Raises DatasetBuildError naming the file on any mismatch.
    """
    path = Path(path)
    try:
        data = path.read_bytes()
    except OSError as err:
        raise DatasetBuildError(path, f"cannot read file ({err.strerror or err})") from err
    header = parse_phoenix_header(path, data)
    rows, cols = header["NumberOfRows"], header["NumberOfColumns"]
    if rows <= 0 or cols <= 0:
        raise DatasetBuildError(path, f"invalid chip size {rows}x{cols} in header")
    offset = header["PhoenixHeaderLength"] + int(header.get("native_header_length", 0))
    expected = 2 * rows * cols * 4
    found = len(data) - offset
    if found < expected:
        raise DatasetBuildError(
            path, f"truncated: {rows}x{cols} chip needs {expected} payload bytes after offset {offset}, found {found}")
    if found > expected:
        raise DatasetBuildError(
            path, f"{found - expected} unexpected bytes after the {rows}x{cols} magnitude+phase payload")
    payload = data[offset:]
    checksum = header.get("Chip_MD5_CheckSum")
    if verify_md5 and checksum:
        actual = hashlib.md5(payload).hexdigest()
        if actual != str(checksum).lower():
            raise DatasetBuildError(path, f"MD5 mismatch: header Chip_MD5_CheckSum {checksum}, payload md5 {actual}")
    values = np.frombuffer(payload, dtype=">f4").astype(np.float32).reshape(2, rows, cols)
    return MstarPhoenixChip(path=path, header=header, magnitude=values[0], phase=values[1])


def is_phoenix_file(path: str | Path) -> bool:
    """True if the file starts with a Phoenix header marker (cheap: reads 64 bytes)."""
    with open(path, "rb") as handle:
        return HEADER_START in handle.read(64)
