"""OpenSARShip: Sentinel-1 ship chips matched to AIS records in each scene's Ship.xml.

Two folder layouts are read: the original per-scene packages (``<scene>/Ship.xml`` + ``<scene>/Patch_Uint8/*.tif``)
and a flat copy (``annotations/<scene>/Ship.xml`` + ``patches/<scene>/*.tif``). Chip names are
``Visual_<AIS type>_x<X>_y<Y>[_vv|_vh].tif`` where X, Y is the ship centre in scene pixels.
"""

from __future__ import annotations

import dataclasses
import math
import re
import xml.etree.ElementTree as ET
from pathlib import Path

from ..errors import DatasetBuildError
from ..report import BuildReport

CHIP_NAME = re.compile(r"^Visual_(?P<type>.+)_x(?P<x>\d+)_y(?P<y>\d+)(?:_(?P<pol>vv|vh|hh|hv))?\.tiff?$", re.IGNORECASE)
# Some original Ship.xml files close with "<\ShipList>" (a backslash instead of a slash).
BACKSLASH_CLOSING_TAG = re.compile(rb"<\\(\w+)>")
SCENE_POLARISATION = re.compile(r"_1S(?P<mode>[SD])(?P<pol>[HV])_")


@dataclasses.dataclass(frozen=True)
class ShipRecord:
    """One ship of a Ship.xml (typed; NaN where the file says NaN)."""

    center_x: int
    center_y: int
    mmsi: int
    ais_ship_type_code: int
    elaborated_type: str
    ais_length_m: float
    ais_width_m: float
    manual_length_px: float
    incidence_deg: float


@dataclasses.dataclass(frozen=True)
class ShipChip:
    path: Path
    scene: str
    ship_id: str  # "<scene>/x<X>_y<Y>": the VV and VH chips of one ship share it
    label: str  # AIS type from the file name, e.g. "Cargo"
    polarization: str  # "vv", "vh", ...
    ship: ShipRecord


def _number(path: Path, ship: ET.Element, field: str, kind: type) -> float | int:
    element = ship.find(field)
    if element is None or element.text is None:
        raise DatasetBuildError(path, f"ship entry lacks {field}")
    text = element.text.strip()
    try:
        value = float(text)
    except ValueError as err:
        raise DatasetBuildError(path, f"{field} is not a number: {text!r}") from err
    if kind is int:
        return int(value) if math.isfinite(value) else -1  # -1 marks a missing integer (MMSI, type code)
    return value


def read_ship_xml(path: str | Path, report: BuildReport | None = None) -> dict[tuple[int, int], ShipRecord]:
    """Parse a Ship.xml into ships keyed by their (Center_x, Center_y).

    A backslash closing tag (``<\\ShipList>``) is repaired to ``</ShipList>`` and the repair is recorded in
    ``report``; any other XML error raises DatasetBuildError naming the file.
    """
    path = Path(path)
    data = path.read_bytes()
    bad_tags = sorted({tag.decode() for tag in BACKSLASH_CLOSING_TAG.findall(data)})
    if bad_tags:
        data = BACKSLASH_CLOSING_TAG.sub(rb"</\1>", data)
        if report is not None:
            report.repair(str(path), "malformed closing tag(s) " + ", ".join(f"<\\{t}> -> </{t}>" for t in bad_tags))
    try:
        root = ET.fromstring(data)
    except ET.ParseError as err:
        raise DatasetBuildError(path, f"malformed XML ({err})") from err
    ships = {}
    for ship in root.iter("ship"):
        record = ShipRecord(
            center_x=_number(path, ship, "SARShipInformation/Center_x", int),
            center_y=_number(path, ship, "SARShipInformation/Center_y", int),
            mmsi=_number(path, ship, "AISShipInformation/MMSI", int),
            ais_ship_type_code=_number(path, ship, "AISShipInformation/Ship_Type", int),
            elaborated_type=(ship.findtext("MarineTrafficInformation/Elaborated_type") or "").strip(),
            ais_length_m=_number(path, ship, "AISShipInformation/Length", float),
            ais_width_m=_number(path, ship, "AISShipInformation/Width", float),
            manual_length_px=_number(path, ship, "SARShipInformation/Manual_Length", float),
            incidence_deg=_number(path, ship, "SARShipInformation/Incidence", float),
        )
        key = (record.center_x, record.center_y)
        if key in ships:
            raise DatasetBuildError(path, f"two ships share the centre x={key[0]} y={key[1]}")
        ships[key] = record
    if not ships:
        raise DatasetBuildError(path, "no <ship> entries")
    return ships


def _chip_folder(root: Path, ship_xml: Path) -> Path | None:
    for folder in (ship_xml.parent / "Patch_Uint8", root / "patches" / ship_xml.parent.name):
        if folder.is_dir():
            return folder
    return None


def list_opensarship_chips(root: str | Path, report: BuildReport) -> list[ShipChip]:
    """Match every chip to its Ship.xml entry; unmatched chips are reported as skipped, other files as ignored."""
    root = Path(root)
    ship_xmls = sorted(root.rglob("Ship.xml"))
    if not ship_xmls:
        raise DatasetBuildError(root, "no Ship.xml found (expected OpenSARShip scene folders)")
    chips = []
    for ship_xml in ship_xmls:
        scene = ship_xml.parent.name
        folder = _chip_folder(root, ship_xml)
        if folder is None:
            report.skip(str(ship_xml), "no chip folder (Patch_Uint8/ beside it or patches/<scene>/)")
            continue
        ships = read_ship_xml(ship_xml, report)
        scene_pol = SCENE_POLARISATION.search(scene)
        for path in sorted(folder.iterdir()):
            match = CHIP_NAME.match(path.name)
            if match is None:
                report.ignore(str(path), "not an OpenSARShip chip name (Visual_<type>_x<X>_y<Y>[_pol].tif)")
                continue
            center = (int(match["x"]), int(match["y"]))
            if center not in ships:
                report.skip(str(path), f"no ship with centre x={center[0]} y={center[1]} in {ship_xml}")
                continue
            polarization = (match["pol"] or "").lower()
            if not polarization:
                if scene_pol is None or scene_pol["mode"] != "S":
                    report.skip(str(path), "chip name has no polarisation and the scene is not single-pol")
                    continue
                polarization = 2 * scene_pol["pol"].lower()
            chips.append(ShipChip(
                path=path, scene=scene, ship_id=f"{scene}/x{center[0]}_y{center[1]}", label=match["type"],
                polarization=polarization, ship=ships[center],
            ))
    return chips
