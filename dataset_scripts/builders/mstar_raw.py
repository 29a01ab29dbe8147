"""Raw MSTAR Phoenix files: magnitude as a float32 amplitude array, phase beside it, typed header metadata."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import datasets

from ..captions import classification_captions
from ..errors import DatasetBuildError
from ..features import array_columns, array_features, label_columns
from ..readers import is_phoenix_file, parse_phoenix_header, read_mstar_phoenix
from .base import Item, SarBuilder, SarBuilderConfig
from .mstar import MstarBuilder

# SOC convention; other depressions (EOC sets) get a split named after the angle, e.g. "depression_30".
SPLIT_BY_DEPRESSION = {17.0: "train", 15.0: "test"}
HEADER_BYTES = 8192  # Phoenix headers are ~2 kB


@dataclasses.dataclass
class MstarRawConfig(SarBuilderConfig):
    """require_checksum: refuse files whose header has no Chip_MD5_CheckSum (by default they are read unverified
    and flagged in the report)."""

    require_checksum: bool = False


class MstarRawBuilder(SarBuilder):
    BUILDER_CONFIG_CLASS = MstarRawConfig
    SOURCE = "mstar_raw"
    CLASS_SECTION = "mstar"
    DESCRIPTION = ("Raw MSTAR chips (Phoenix header + big-endian float32 magnitude and phase), payload checked "
                   "against the header MD5. `array` holds the linear magnitude, `phase` the phase in radians.")
    CITATION = MstarBuilder.CITATION

    def _list_items(self) -> list[Item]:
        root = Path(self.config.data_dir)
        if not root.is_dir():
            raise DatasetBuildError(root, "raw MSTAR folder does not exist")
        items = []
        for path in sorted(p for p in root.rglob("*") if p.is_file()):
            if not is_phoenix_file(path):
                self.report.ignore(str(path), "not a Phoenix-header MSTAR file")
                continue
            try:
                with open(path, "rb") as handle:
                    header = parse_phoenix_header(path, handle.read(HEADER_BYTES))
            except DatasetBuildError as err:
                self.report.skip(err.path, err.problem)
                continue
            depression = header.get("DesiredDepression")
            if depression is None:
                self.report.skip(str(path), "Phoenix header lacks DesiredDepression (needed for the split)")
                continue
            split = SPLIT_BY_DEPRESSION.get(depression, f"depression_{depression:g}".replace(".", "_"))
            items.append(Item(split, path.relative_to(root).as_posix(), (path, str(header.get("TargetType", "")))))
        return items

    def _features(self) -> datasets.Features:
        return datasets.Features({
            **array_features("float32"),
            "phase": datasets.List(datasets.Value("float32")),
            **label_columns(self.checked_class_names((item.value[1], str(item.value[0])) for item in self.items)),
            "serial_number": datasets.Value("string"),
            "depression_deg": datasets.Value("float32"),
            "azimuth_deg": datasets.Value("float32"),
            "header": datasets.Value("string"),
            "file": datasets.Value("string"),
        })

    def _example(self, item: Item) -> dict:
        path, target = item.value
        chip = read_mstar_phoenix(path)
        self.check_finite(path, chip.magnitude, chip.phase)
        if not chip.header.get("Chip_MD5_CheckSum"):
            unverified = "no Chip_MD5_CheckSum in the header: the payload cannot be verified"
            if self.config.require_checksum:
                raise DatasetBuildError(path, f"{unverified} (refused: require_checksum / --require-checksum)")
            self.report.flag(str(path), f"{unverified}; read unverified (--require-checksum refuses it)")
        polarization = str(chip.header.get("Polarization", "HH"))
        return {
            **array_columns(chip.magnitude[:, :, None], [polarization], "amplitude"),
            "phase": chip.phase.ravel(),
            "captions": classification_captions(self.caption_name(target, str(path)), item.key, self.config.seed),
            "label": target,
            "source": self.SOURCE,
            "split": item.split,
            "serial_number": str(chip.header.get("TargetSerNum", "")),
            "depression_deg": chip.depression_deg,
            "azimuth_deg": chip.azimuth_deg,
            "header": json.dumps(chip.header),
            "file": item.key,
        }
