"""OpenSARShip Sentinel-1 ship chips (8-bit Patch_Uint8) with AIS metadata; split by ship, never by chip."""

from __future__ import annotations

from pathlib import Path

import datasets

from ..features import classification_features
from ..readers import list_opensarship_chips
from ..splits import hash_split
from .base import Item, SarBuilder


class OpenSarShipBuilder(SarBuilder):
    SOURCE = "opensarship"
    CLASS_SECTION = "opensarship"
    DESCRIPTION = ("OpenSARShip: Sentinel-1 IW ship chips matched to AIS; label = AIS ship type from the chip name. "
                   "No official split: ships are assigned to train/test by a seeded hash of the ship id, so the "
                   "VV and VH chips of a ship stay together.")
    CITATION = ("L. Huang et al., 'OpenSARShip: A Dataset Dedicated to Sentinel-1 Ship Interpretation', "
                "IEEE JSTARS 11(1), 2018.")

    def _list_items(self) -> list[Item]:
        root = Path(self.config.data_dir)
        return [Item(hash_split(chip.ship_id, self.config.seed, self.config.test_fraction),
                     chip.path.relative_to(root).as_posix(), chip)
                for chip in list_opensarship_chips(root, self.report)]

    def _features(self) -> datasets.Features:
        names = self.checked_class_names((item.value.label, str(item.value.path)) for item in self.items)
        return classification_features(names, {
            "ship_id": datasets.Value("string"),
            "scene": datasets.Value("string"),
            "polarization": datasets.Value("string"),
            "mmsi": datasets.Value("int64"),
            "ais_ship_type_code": datasets.Value("int32"),
            "elaborated_type": datasets.Value("string"),
            "ais_length_m": datasets.Value("float32"),
            "ais_width_m": datasets.Value("float32"),
            "manual_length_px": datasets.Value("float32"),
            "incidence_deg": datasets.Value("float32"),
            "file": datasets.Value("string"),
        })

    def _example(self, item: Item) -> dict:
        chip = item.value
        ship = chip.ship
        return self.chip_example(
            chip.path, chip.label, item,
            ship_id=chip.ship_id,
            scene=chip.scene,
            polarization=chip.polarization,
            mmsi=ship.mmsi,
            ais_ship_type_code=ship.ais_ship_type_code,
            elaborated_type=ship.elaborated_type,
            ais_length_m=ship.ais_length_m,
            ais_width_m=ship.ais_width_m,
            manual_length_px=ship.manual_length_px,
            incidence_deg=ship.incidence_deg,
        )
