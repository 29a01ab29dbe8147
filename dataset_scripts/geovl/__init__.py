"""SAR-GEOVL data pipeline of SAR-KnowLIP: geo-referenced SRC tiling, GLCM/KNN quality screening,
HCoT captioning through a pluggable, cached LLM backend, and small real VQA evaluation sets."""

from .dynamic_range import compress_to_uint8, infer_input_scale, to_pil
from .geotiff import AffineTransform, GeoRaster, GeoTiffError, read_geotiff
from .hcot import (
    SUBTEXT_FIELDS,
    HCoTTask,
    MissingFieldError,
    SensorInfo,
    TileContext,
    build_hcot_prompt,
    join_subtexts,
    parse_subtexts,
)
from .llm import (
    CachedLLM,
    ChatPrompt,
    LLMRequestError,
    OpenAIChatBackend,
    ResponseCache,
    TransformersTextBackend,
    cache_key,
)
from .pipeline import DEFAULT_SCALE_SIDES_M, PipelineReport, build_geovl_dataset
from .quality import QualityConfig, QualityResult, glcm, glcm_statistics, screen_tiles, texture_features
from .tiling import PAPER_TILE_SIDE_M, GeoTile, ScaledTile, Window, multiscale_src_tiles, src_tile_size_px, src_tiles
from .vqa_sets import (
    VQA_FEATURES,
    hrsid_vqa,
    load_vqa_sets,
    mstar_recognition_vqa,
    region_number,
    sar_aircraft_vqa,
    save_vqa_sets,
    vqa_splits,
)
