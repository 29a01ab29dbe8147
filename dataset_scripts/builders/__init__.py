"""datasets.GeneratorBasedBuilder subclasses, one per source, by CLI name."""

from .base import Item, SarBuilder, SarBuilderConfig
from .caption_table import CaptionTableBuilder, CaptionTableConfig
from .coco import CocoDetectionBuilder
from .mstar import MstarBuilder
from .mstar_raw import MstarRawBuilder, MstarRawConfig
from .opensarship import OpenSarShipBuilder
from .sarclip_mix import SarclipMixBuilder, SarclipMixConfig
from .synthetic import SyntheticBuilder, SyntheticConfig
from .voc import VocDetectionBuilder

BUILDERS: dict[str, type[SarBuilder]] = {
    builder.SOURCE: builder
    for builder in (MstarBuilder, MstarRawBuilder, OpenSarShipBuilder, CocoDetectionBuilder, VocDetectionBuilder,
                    CaptionTableBuilder, SyntheticBuilder, SarclipMixBuilder)
}

__all__ = [
    "BUILDERS", "CaptionTableBuilder", "CaptionTableConfig", "CocoDetectionBuilder", "Item", "MstarBuilder",
    "MstarRawBuilder", "MstarRawConfig", "OpenSarShipBuilder", "SarBuilder", "SarBuilderConfig", "SarclipMixBuilder",
    "SarclipMixConfig", "SyntheticBuilder", "SyntheticConfig", "VocDetectionBuilder",
]
