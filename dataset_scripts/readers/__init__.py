"""Readers: SAR files to numpy arrays of the stored values (never normalised) plus metadata."""

from .boxes import AnnotatedImage, Box
from .caption_table import CaptionedImage, read_caption_table
from .coco import read_coco
from .image_file import IMAGE_SUFFIXES, ImageFile, read_image_file
from .mstar_jpeg import SOC_DEPRESSION_DEG, MstarChipFile, list_mstar_chip_folders
from .mstar_phoenix import MstarPhoenixChip, is_phoenix_file, parse_phoenix_header, read_mstar_phoenix
from .opensarship import ShipChip, ShipRecord, list_opensarship_chips, read_ship_xml
from .paths import check_inside, source_root
from .tiff import TiffRaster, read_tiff
from .voc import read_voc

__all__ = [
    "AnnotatedImage", "Box", "CaptionedImage", "IMAGE_SUFFIXES", "ImageFile", "MstarChipFile", "MstarPhoenixChip",
    "SOC_DEPRESSION_DEG", "ShipChip", "ShipRecord", "TiffRaster", "check_inside", "is_phoenix_file",
    "list_mstar_chip_folders", "list_opensarship_chips", "parse_phoenix_header", "read_caption_table", "read_coco",
    "read_image_file", "read_mstar_phoenix", "read_ship_xml", "read_tiff", "read_voc", "source_root",
]
