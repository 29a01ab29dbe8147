"""SARCLIP-1M caption recipe (paper section III-B): templates and class names as data, deterministic by seed."""

from .class_names import ClassName, ClassNameTable, normalise_key
from .classification import CAPTIONS_PER_IMAGE, classification_captions
from .detection import assign_region, detection_captions, iou, objects_phrase, region_boxes, relative_direction
from .fluency import FluencyCheck, apply_fluency_check, load_fluency_check
from .templates import DIRECTIONS, REGIONS, CaptionTemplates, load_templates

__all__ = [
    "CAPTIONS_PER_IMAGE", "DIRECTIONS", "REGIONS", "CaptionTemplates", "ClassName", "ClassNameTable", "FluencyCheck",
    "apply_fluency_check", "assign_region", "classification_captions", "detection_captions", "iou",
    "load_fluency_check", "load_templates", "normalise_key", "objects_phrase", "region_boxes", "relative_direction",
]
