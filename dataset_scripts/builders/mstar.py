"""MSTAR JPEG/PNG chip folders (``<root>/<split>/<class>/<chip>``), e.g. the 10-class SOC set."""

from __future__ import annotations

import datasets

from ..features import classification_features
from ..readers import list_mstar_chip_folders
from .base import Item, SarBuilder


class MstarBuilder(SarBuilder):
    SOURCE = "mstar"
    CLASS_SECTION = "mstar"
    DESCRIPTION = ("MSTAR X-band spotlight SAR target chips (Sandia Twin Otter, 1 ft), class = folder; depression "
                   "inferred from the split (SOC: train 17 deg, test 15 deg).")
    CITATION = ("T. Ross et al., 'Standard SAR ATR evaluation experiments using the MSTAR public release data set', "
                "Proc. SPIE 3370, 1998.")
    LICENSE = "other"

    def _list_items(self) -> list[Item]:
        chips = list_mstar_chip_folders(self.config.data_dir, self.report)
        return [Item(chip.split, chip.relative_path, chip) for chip in chips]

    def _features(self) -> datasets.Features:
        names = self.checked_class_names((item.value.class_name, str(item.value.path.parent)) for item in self.items)
        return classification_features(names, {
            "depression_deg": datasets.Value("float32"),
            "file": datasets.Value("string"),
        })

    def _example(self, item: Item) -> dict:
        chip = item.value
        return self.chip_example(chip.path, chip.class_name, item, depression_deg=chip.depression_deg)
