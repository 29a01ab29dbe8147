"""Hierarchical Cognitive Chain-of-Thought (HCoT) prompts and parsing of their 8 sub-text fields (paper 3.2, 4.2).

A prompt walks the LLM through the paper's five knowledge layers (earth cognition from the tile's
coordinates, social priors, SAR theory, instance-level discrimination with resolution-aware scale,
knowledge calibration) and the multi-scale chain HCoT-MIS:
``T_L = f(S_L)``, ``T_M = f(S_M, T_L)``, ``T_S = f(S_S, T_M)``, i.e. a medium (small) tile's prompt carries
the text generated for its enclosing large (medium) tile. Three task variants follow the paper's
instruction sets: ground targets, marine targets, terrain.

The paper says each image gets 8 complementary sub-texts extracted by regular expressions, "covering
scene background, regional function, terrain structure, target type and layout relationships", but does
not list them. Our 8 fields (the same columns for every task; the task changes what each asks for):
``SUBTEXT_FIELDS``. The LLM answers each inside ``<field>...</field>`` tags, which a regex extracts.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from enum import Enum

from .llm import ChatPrompt
from .tiling import SCALES, GeoTile

SUBTEXT_FIELDS = (
    "geographic_context",
    "regional_function",
    "landform",
    "scattering_characteristics",
    "target_category",
    "target_quantity",
    "target_attributes",
    "spatial_layout",
)


class HCoTTask(str, Enum):
    GROUND_TARGET = "ground_target"
    MARINE_TARGET = "marine_target"
    TERRAIN = "terrain"


class MissingFieldError(ValueError):
    """An LLM answer lacks one of the 8 sub-text fields (or has it empty or twice)."""


@dataclass(frozen=True)
class SensorInfo:
    platform: str | None = None
    band: str | None = None
    polarisations: tuple[str, ...] = ()


@dataclass(frozen=True)
class TileContext:
    """What the prompt states about a tile: where it is, how big it is, and optionally a known place name."""

    center_lonlat: tuple[float, float]
    bounds_lonlat: tuple[float, float, float, float]
    pixel_size_m: tuple[float, float]
    size_px: tuple[int, int]  # width, height
    bands: int = 1  # 1: grey-level image; 2: (b0, b1, mean) colour composite, see dynamic_range.to_pil
    place: str | None = None

    @classmethod
    def from_tile(cls, tile: GeoTile, bands: int, place: str | None = None) -> "TileContext":
        size = (tile.window.width, tile.window.height)
        return cls(tile.center_lonlat, tile.bounds_lonlat, tile.pixel_size_m, size, bands, place)


SYSTEM_PROMPT = (
    "You are a senior synthetic aperture radar (SAR) image interpreter. You reason step by step from "
    "geography and world knowledge to SAR physics and measurable object sizes, you never describe objects "
    "that cannot be resolved at the given resolution, and you answer in the exact tagged format requested."
)

_SOCIAL_PRIORS = {
    HCoTTask.GROUND_TARGET: (
        "Relate the place to its economic structure, architecture and transport: for an airport, its role "
        "(international hub, regional, military, general aviation), the airlines and aircraft types that "
        "typically operate there, the runway/taxiway/apron/terminal layout; for industrial or logistics zones, "
        "factories, warehouses, parked vehicles and storage tanks."
    ),
    HCoTTask.MARINE_TARGET: (
        "Relate the place to maritime activity: ports, container terminals, fishing harbours, anchorages, "
        "shipping lanes, offshore platforms and aquaculture; the ship types such waters usually carry (cargo, "
        "container, tanker, bulk carrier, passenger/ferry, fishing, tug, naval) and whether ships lie inshore "
        "(berthed, near docks) or offshore."
    ),
    HCoTTask.TERRAIN: (
        "Relate the place to land use: urban cores (dense high-rise or low-rise blocks), residential estates, "
        "industrial parks, agriculture, forests, wetlands, rivers, lakes and coast; and to the transport network "
        "(highways, arterial roads, railways, bridges) typical of this region's planning."
    ),
}

_INSTANCE_REFERENCES = {
    HCoTTask.GROUND_TARGET: (
        "Reference sizes (length x wingspan): A220-300 38.7 x 35.1 m; ARJ21-700 33.5 x 27.3 m; "
        "A320 37.6 x 35.8 m, A321 44.5 x 35.8 m; Boeing 737-800 39.5 x 35.8 m; Boeing 787-9 62.8 x 60.1 m; "
        "A330-300 63.7 x 60.3 m; A350-900 66.8 x 64.8 m; Boeing 747-8 76.3 x 68.4 m; cars 4-5 m; trucks "
        "8-18 m; tanks and armoured vehicles 6-10 m; runways 45-60 m wide and 2-4 km long."
    ),
    HCoTTask.MARINE_TARGET: (
        "Reference lengths: small boats 5-15 m; fishing vessels 15-60 m; tugs 25-40 m; patrol boats "
        "30-90 m; ferries and passenger ships 80-350 m; tankers 100-380 m; bulk carriers 150-330 m; "
        "container ships 150-400 m; naval destroyers 130-175 m. Beam is typically 1/6-1/8 of length."
    ),
    HCoTTask.TERRAIN: (
        "Reference sizes: detached houses 10-20 m; residential blocks 30-80 m; industrial halls and "
        "warehouses 50-300 m; two-lane roads about 7-10 m wide, urban arterials 20-40 m, motorways 25-45 m; "
        "railway tracks 3-15 m; river widths from tens of metres upward."
    ),
}

_FIELD_GUIDE = {
    "geographic_context": "where the scene is (country, city or region, notable facilities) and its macro setting.",
    "regional_function": "the functional role of the area (e.g. airport, port, industrial, residential, agricultural).",
    "landform": "landforms and land cover present (built-up land, water, vegetation, bare land, relief) and which dominates.",
    "scattering_characteristics": "the SAR appearance: bright/dark patterns, textures, speckle, shadows and what causes them.",
}

_TARGET_FIELD_GUIDE = {
    HCoTTask.GROUND_TARGET: {
        "target_category": "the ground targets (aircraft, vehicles, buildings, storage tanks...) and their likely types.",
        "target_quantity": "how many of each target are visible (approximate when crowded).",
        "target_attributes": "size estimates from pixel extent x resolution, shape and structure (e.g. fuselage, wings).",
        "spatial_layout": "where the targets are in the image (top-left, centre, ...) and how they are arranged.",
    },
    HCoTTask.MARINE_TARGET: {
        "target_category": "the marine targets (ships, boats, platforms...) and their likely types.",
        "target_quantity": "how many ships or other marine targets are visible.",
        "target_attributes": "length/beam estimates from pixel extent x resolution, heading, wakes, superstructure.",
        "spatial_layout": "where the targets are in the image, inshore or offshore, berthed or under way, their arrangement.",
    },
    HCoTTask.TERRAIN: {
        "target_category": "the main ground elements: buildings, water bodies, road networks, vegetation, bare land.",
        "target_quantity": "approximate counts or area proportions of those elements.",
        "target_attributes": "sizes, shapes and structure of buildings, roads and water bodies, from pixel extent x resolution.",
        "spatial_layout": "where each element lies in the image and how they connect (road grid, river course, blocks).",
    },
}

_SCALE_GOAL = {
    "large": "This is the LARGE-scale image: describe the overall geographic background, regional functions and environmental context.",
    "medium": (
        "This is a MEDIUM-scale image inside the large-scale image described below: use that description as "
        "prior knowledge to describe the structural layout and target distribution, consistent with it."
    ),
    "small": (
        "This is a SMALL-scale image inside the medium-scale image described below: use that description as "
        "prior knowledge to describe the specific attributes and details of the targets (type, structure, size)."
    ),
}


def build_hcot_prompt(
    context: TileContext,
    task: HCoTTask,
    scale: str,
    sensor: SensorInfo = SensorInfo(),
    parent_text: str | None = None,
    image_png: bytes | None = None,
) -> ChatPrompt:
    """The HCoT prompt for one tile. ``parent_text`` is T_L for a medium tile, T_M for a small one, None for large."""
    if scale not in SCALES:
        raise ValueError(f"scale must be one of {SCALES}, got {scale!r}")
    if (scale == "large") != (parent_text is None):
        raise ValueError(f"a {scale} tile needs {'no' if scale == 'large' else 'its parent'} text (T_L = f(S_L), T_M = f(S_M, T_L), T_S = f(S_S, T_M))")
    task = HCoTTask(task)
    lon, lat = context.center_lonlat
    lon_min, lat_min, lon_max, lat_max = context.bounds_lonlat
    px, py = context.pixel_size_m
    width, height = context.size_px
    place = f" The area is known to be: {context.place}." if context.place else ""
    sensor_parts = [
        f"platform {sensor.platform}" if sensor.platform else "",
        f"{sensor.band} band" if sensor.band else "",
        f"polarisation {'/'.join(sensor.polarisations)}" if sensor.polarisations else "",
    ]
    sensor_text = ", ".join(p for p in sensor_parts if p) or "not specified"
    if context.bands == 1:
        channels = "The image is an 8-bit grey-level SAR amplitude image."
    else:
        first, second = sensor.polarisations if len(sensor.polarisations) == 2 else ("band 1", "band 2")
        channels = f"The image is an 8-bit colour composite: red = {first}, green = {second}, blue = their mean."
    min_px = 3  # our choice: the paper only says that scale reasoning is resolution-aware
    steps = [
        "Step 1 - Earth cognition. The image centre is at latitude {:.5f}, longitude {:.5f} (WGS84); it spans "
        "longitude {:.5f} to {:.5f} and latitude {:.5f} to {:.5f}.{} Use your world knowledge to recall what lies "
        "at these coordinates (country, city, district, airports, ports, industrial zones, rivers, coast).".format(
            lat, lon, lon_min, lon_max, lat_min, lat_max, place
        ),
        "Step 2 - Social priors. " + _SOCIAL_PRIORS[task],
        "Step 3 - SAR theory. Sensor: {}. {} Interpret the image with SAR imaging physics: smooth surfaces "
        "(calm water, runways, roads, tarmac) reflect specularly away and look dark; metal objects and dihedral "
        "corners (buildings on flat ground, ship superstructures, aircraft fuselage-wing joints) give strong "
        "bright returns; vegetation scatters diffusely with medium, uniform texture; speckle is granular noise, "
        "not structure; tall objects show layover towards the sensor and radar shadow away from it. Typical "
        "shapes: rectangles for buildings, Y or cross shapes for aircraft, elongated bright hulls with wakes for "
        "ships.".format(sensor_text, channels),
        "Step 4 - Instance-level discrimination with scale. One pixel is {:.2f} m x {:.2f} m, so the image covers "
        "{} x {} pixels = {:.0f} m x {:.0f} m. Measure objects in pixels and convert to metres (an object "
        "spanning n pixels is about n x {:.2f} m) to tell types apart. {} Objects smaller than about {} pixels "
        "({:.0f} m) cannot be identified at this resolution: mention them only as unresolved bright points.".format(
            px, py, width, height, width * px, height * py, px, _INSTANCE_REFERENCES[task], min_px, min_px * px
        ),
        "Step 5 - Knowledge calibration and decision. Cross-check steps 1-4: keep statements supported by "
        "high-confidence cues (location, regional priors, clear SAR signatures), drop those that contradict SAR "
        "physics or the measured sizes, and state uncertainty where the evidence is weak. Be realistic and "
        "consistent.",
    ]
    scale_text = _SCALE_GOAL[scale]
    if parent_text is not None:
        parent_scale = SCALES[SCALES.index(scale) - 1]
        scale_text += f"\nDescription of the enclosing {parent_scale}-scale image:\n{parent_text}"
    fields = {**_FIELD_GUIDE, **_TARGET_FIELD_GUIDE[task]}
    output = "\n".join(f"<{name}>{fields[name]}</{name}>" for name in SUBTEXT_FIELDS)
    user = (
        f"Task: {task.value.replace('_', ' ')} interpretation of the attached SAR image.\n"
        f"{scale_text}\n\n"
        "Reason through these five layers:\n" + "\n".join(steps) + "\n\n"
        "You may first think inside <reasoning>...</reasoning>. Then answer with exactly these eight tagged "
        "sections, each one to three sentences of plain text, replacing the guidance inside the tags:\n" + output
    )
    return ChatPrompt(system=SYSTEM_PROMPT, user=user, image_png=image_png)


_REASONING_RE = re.compile(r"<\s*reasoning\s*>.*?<\s*/\s*reasoning\s*>", re.IGNORECASE | re.DOTALL)
_FIELD_RE = re.compile(r"<\s*(" + "|".join(SUBTEXT_FIELDS) + r")\s*>(.*?)<\s*/\s*\1\s*>", re.IGNORECASE | re.DOTALL)


def parse_subtexts(answer: str, item_id: str) -> dict[str, str]:
    """Extract the 8 sub-texts of an HCoT answer; ``MissingFieldError`` names the item and the field."""
    found: dict[str, list[str]] = {name: [] for name in SUBTEXT_FIELDS}
    for match in _FIELD_RE.finditer(_REASONING_RE.sub(" ", answer)):
        found[match.group(1).lower()].append(" ".join(match.group(2).split()))
    for name in SUBTEXT_FIELDS:
        values = found[name]
        if not values:
            present = [n for n in SUBTEXT_FIELDS if found[n]]
            raise MissingFieldError(f"item {item_id!r}: LLM answer lacks field <{name}> (fields found: {present})")
        if len(values) > 1:
            raise MissingFieldError(f"item {item_id!r}: LLM answer has field <{name}> {len(values)} times")
        if not values[0]:
            raise MissingFieldError(f"item {item_id!r}: LLM answer has an empty field <{name}>")
    return {name: found[name][0] for name in SUBTEXT_FIELDS}


def join_subtexts(subtexts: dict[str, str]) -> str:
    """The full text of an image: its 8 sub-texts in ``SUBTEXT_FIELDS`` order, space separated."""
    return " ".join(subtexts[name] for name in SUBTEXT_FIELDS)
