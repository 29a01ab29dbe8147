"""``sarclip_mix``: image-caption pairs concatenated from several sources, like SARCLIP-1M (paper Table I).

Each component is another builder (classification, detection or caption table); its examples are reduced to the
columns all sources share. Every component keeps its own splits and its own options (e.g. ``max_items`` per
component; the mix's ``max_items`` then limits the concatenated splits).
"""

from __future__ import annotations

import dataclasses
import functools
from pathlib import Path

import datasets

from ..errors import DatasetBuildError
from ..features import CAPTIONS
from .base import Item, SarBuilder, SarBuilderConfig

# Components found under a data root (the layout of ../shared/data): (builder name, sub-folder, builder options).
DEFAULT_COMPONENTS = (
    ("mstar", "mstar_soc", {}),
    ("opensarship", "opensarship", {}),
    ("coco_det", "hrsid_samples/annotations_coco.json", {}),
    ("voc_det", "sar_aircraft_samples", {"class_section": "sar_aircraft"}),
)


@dataclasses.dataclass
class SarclipMixConfig(SarBuilderConfig):
    """components: (builder name, source path, options) triples; default: DEFAULT_COMPONENTS under ``data_dir``
    (those not present are reported as ignored)."""

    components: list | None = None


def dataset_name(source: Path) -> str:
    """A component's name in the ``dataset`` column: its source folder (the json's folder for a COCO file)."""
    return source.name if source.is_dir() else source.parent.name


class SarclipMixBuilder(SarBuilder):
    BUILDER_CONFIG_CLASS = SarclipMixConfig
    SOURCE = "sarclip_mix"
    TASK = "mixed"
    DESCRIPTION = ("SAR image-caption pairs from several sources (SARCLIP-1M recipe): classification labels and "
                   "detection boxes turned into captions, plus caption tables. `dataset` names the source "
                   "folder, `source` the builder that read it.")

    @functools.cached_property
    def components(self) -> list[SarBuilder]:
        from . import BUILDERS  # the registry imports this module

        specs = self.config.components
        if specs is None:
            root = Path(self.config.data_dir)
            specs = []
            for name, relative, options in DEFAULT_COMPONENTS:
                if (root / relative).exists():
                    specs.append((name, str(root / relative), options))
                else:
                    self.report.ignore(str(root / relative), f"component {name} not found")
        builders = []
        for name, path, options in specs:
            if name not in BUILDERS or name == self.SOURCE:
                raise DatasetBuildError(path, f"unknown mix component {name!r} (choose from {sorted(BUILDERS)})")
            shared = {"seed": self.config.seed, "strict": self.config.strict, "nan_policy": self.config.nan_policy,
                      "allow_outside_source": self.config.allow_outside_source}
            builders.append(BUILDERS[name](cache_dir=self._cache_dir_root, data_dir=str(path), **{**shared, **options}))
        if not builders:
            raise DatasetBuildError(self.config.data_dir, "no mix component found")
        return builders

    def _list_items(self) -> list[Item]:
        items = []
        for index, component in enumerate(self.components):
            if "image" not in component.info.features:
                raise DatasetBuildError(component.config.data_dir,
                                        f"component {component.SOURCE} has no 8-bit image column")
            name = dataset_name(Path(component.config.data_dir))
            items += [Item(split, f"{name}/{item.key}", (index, item))
                      for split, component_items in component.limited_items_by_split().items()
                      for item in component_items]
            self.report.merge(component.report)
        return items

    def _features(self) -> datasets.Features:
        return datasets.Features({
            "image": datasets.Image(),
            "captions": CAPTIONS,
            **{name: datasets.Value("string") for name in ("dataset", "source", "task", "split", "file")},
        })

    def _example(self, item: Item) -> dict:
        index, component_item = item.value
        component = self.components[index]
        example = component._example(component_item)
        return {"image": example["image"], "captions": example["captions"],
                "dataset": dataset_name(Path(component.config.data_dir)), "source": component.SOURCE,
                "task": component.TASK, "split": item.split, "file": item.key}
