"""SAR-GEOVL data pipeline of SAR-KnowLIP: geo-referenced SRC tiling, GLCM/KNN quality screening, HCoT captioning
through a pluggable, cached LLM backend (or composed from known facts, without an LLM), and small real VQA evaluation
sets. CLI: `python -m dataset_scripts.geovl {caption,describe,vqa}`. Internals (tiling, screening, prompts, parsing)
are importable by module path.
"""

from .geotiff import read_geotiff
from .hcot import HCoTTask, SensorInfo
from .llm import CachedLLM, OpenAIChatBackend, ResponseCache, TransformersTextBackend
from .pipeline import build_geovl_dataset
from .quality import QualityConfig
from .vqa_sets import hrsid_vqa, load_vqa_sets, mstar_recognition_vqa, sar_aircraft_vqa, save_vqa_sets

__all__ = [
    "CachedLLM", "HCoTTask", "OpenAIChatBackend", "QualityConfig", "ResponseCache", "SensorInfo",
    "TransformersTextBackend", "build_geovl_dataset", "hrsid_vqa", "load_vqa_sets", "mstar_recognition_vqa",
    "read_geotiff", "sar_aircraft_vqa", "save_vqa_sets",
]
