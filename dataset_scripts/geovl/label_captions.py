"""The no-LLM HCoT caption backend: the 8 sub-text fields (``hcot.SUBTEXT_FIELDS``) composed from what a dataset
already knows about an image, so labelled sets and geo-referenced tiles get structured captions offline.

Facts used, each only when present: class labels and boxes (targets, counts, 3 x 3 grid regions as in
``vqa_sets.region_number``, box sizes x pixel size), geo metadata (WGS84 centre, known place, pixel size, extent),
sensor and polarisation, per-image attributes a builder recorded (OpenSARShip AIS length/width and ship type,
incidence or depression angle), and statistics measured on the 8-bit image (dark-pixel share, bright-scatterer
share, GLCM texture from ``quality.texture_features``). A field for which nothing is known says so in one sentence
("... is not recorded"): SCIO's screening (eqs. 10-11) can then drop it, and no fact is invented.

Choices the paper does not fix (it uses an LLM): "dark" is below 40/255 and "bright" above 200/255 on the 8-bit
image; a classification chip with no box is taken as centred on its one target (chips are cut around the target).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import datasets
import numpy as np

from .dynamic_range import compress_to_uint8
from .hcot import SUBTEXT_FIELDS, HCoTTask, SensorInfo, TileContext, join_subtexts
from .quality import texture_features
from .vqa_sets import region_number

DARK, BRIGHT = 40, 200
_FUNCTION = {
    HCoTTask.MARINE_TARGET: "waters used by shipping",
    HCoTTask.GROUND_TARGET: "land hosting ground targets such as vehicles, aircraft or structures",
    HCoTTask.TERRAIN: "a land area whose use is not recorded",
}


@dataclass(frozen=True)
class ImageFacts:
    """What is known about one image. targets: (class words, box (x0, y0, x1, y1) in pixels or None) per target;
    attributes: finished phrases such as "AIS length 179 m"; gray: the 8-bit image (2-D uint8)."""

    gray: np.ndarray
    targets: tuple[tuple[str, tuple[float, float, float, float] | None], ...] = ()
    pixel_size_m: tuple[float, float] | None = None
    center_lonlat: tuple[float, float] | None = None
    place: str | None = None
    sensor: SensorInfo = field(default_factory=SensorInfo)
    attributes: tuple[str, ...] = ()


def facts_from_tile(context: TileContext, sensor: SensorInfo, gray: np.ndarray) -> ImageFacts:
    """Facts of a SAR-GEOVL tile: geo-referencing, sensor and the image (no labels)."""
    return ImageFacts(gray=gray, pixel_size_m=context.pixel_size_m, center_lonlat=context.center_lonlat,
                      place=context.place, sensor=sensor)


def compose_subtexts(facts: ImageFacts, task: HCoTTask | None = None) -> dict[str, str]:
    """The 8 HCoT fields of one image, in ``SUBTEXT_FIELDS`` order, each one or two plain sentences. ``task`` (the
    HCoT instruction set) only words the regional function when no place is known."""
    gray = facts.gray
    height, width = gray.shape
    texture = texture_features(gray)
    dark, bright = 100.0 * float((gray < DARK).mean()), 100.0 * float((gray > BRIGHT).mean())
    names = [name for name, _ in facts.targets]
    counts = Counter(names)
    if facts.center_lonlat:
        lon, lat = facts.center_lonlat
        geo = f"The image is centred at latitude {lat:.4f}, longitude {lon:.4f} (WGS84)."
        geo += f" The area is {facts.place}." if facts.place else ""
    else:
        geo = f"The image shows {facts.place}." if facts.place else "The geographic location of the image is not recorded."
    extent = ""
    if facts.pixel_size_m:
        px, py = facts.pixel_size_m
        extent = f" One pixel is {px:.2f} m, so the image covers {width * px:.0f} m x {height * py:.0f} m."
    sensor = ", ".join(p for p in (facts.sensor.platform, f"{facts.sensor.band} band" if facts.sensor.band else None,
                                   "/".join(facts.sensor.polarisations) or None) if p)
    subtexts = {
        "geographic_context": geo + extent,
        "regional_function": (f"The area is {facts.place}." if facts.place else f"The scene is {_FUNCTION[HCoTTask(task)]}."
                              if task else "The function of the area is not recorded."),
        "landform": (f"Dark, smooth surfaces such as calm water, runways or bare ground cover {dark:.0f} % of the "
                     f"image, brighter textured surfaces the remaining {100 - dark:.0f} %."),
        "scattering_characteristics": (
            f"The SAR image{' (' + sensor + ')' if sensor else ''} has mean brightness {texture['mean']:.0f} of 255; "
            f"strong returns cover {bright:.1f} % of it, and the speckled texture has GLCM entropy "
            f"{texture['entropy']:.1f} bits."),
        "target_category": (f"The targets are: {', '.join(sorted(counts))}." if counts
                            else "No labelled target is recorded for this image."),
        "target_quantity": (_sentence(", ".join(f"{n} {name}" for name, n in sorted(counts.items())))
                            if counts else "The number of targets is not recorded."),
        "target_attributes": _attributes(facts),
        "spatial_layout": _layout(facts, width, height),
    }
    return {name: subtexts[name] for name in SUBTEXT_FIELDS}


def _attributes(facts: ImageFacts) -> str:
    phrases = list(facts.attributes)
    if facts.pixel_size_m:
        px, py = facts.pixel_size_m
        for name, box in facts.targets:
            if box is not None:
                phrases.append(f"the {name} box spans {(box[2] - box[0]) * px:.0f} m x {(box[3] - box[1]) * py:.0f} m")
    return _sentence("; ".join(phrases)) if phrases else "Target sizes are not recorded."


def _sentence(text: str) -> str:
    return text[0].upper() + text[1:] + "."


def _layout(facts: ImageFacts, width: int, height: int) -> str:
    if not facts.targets:
        return "The layout of targets is not recorded."
    if all(box is None for _, box in facts.targets):
        return "The target lies at the centre of the chip." if len(facts.targets) == 1 else \
            "The positions of the targets are not recorded."
    regions: dict[str, set[int]] = {}
    for name, box in facts.targets:
        if box is not None:
            x0, y0, x1, y1 = box
            regions.setdefault(name, set()).add(region_number([x0, y0, x1 - x0, y1 - y0], width, height))
    where = "; ".join(f"the {name} in region{'s' if len(r) > 1 else ''} {', '.join(map(str, sorted(r)))}"
                      for name, r in sorted(regions.items()))
    return f"On a 3 x 3 grid numbered 1 to 9 from the top-left: {where}."


# per-image columns a builder may record -> phrase (OpenSARShip AIS data, MSTAR depression, incidence)
_ATTRIBUTE_COLUMNS = {
    "elaborated_type": "AIS type {}",
    "ais_length_m": "AIS length {:.0f} m",
    "ais_width_m": "AIS width {:.0f} m",
    "depression_deg": "depression angle {:.0f} degrees",
    "incidence_deg": "incidence angle {:.0f} degrees",
}


def dataset_facts(split: datasets.Dataset, class_words: list[str] | None = None) -> Iterator[ImageFacts]:
    """Facts of each row of a labelled split: its `label` (class words from ``label_class_words`` unless given),
    its `boxes` (builder format: pixel (x0, y0, x1, y1) + category), the attribute columns above, `polarization`."""
    from ..captions.class_names import class_words as words_of
    from ..captions.class_names import label_class_words

    class_words = class_words or label_class_words(split)
    boxes = split.features.get("boxes")
    box_words = None
    if boxes is not None:
        names = boxes.feature["category"].names
        source = split[0]["source"] if "source" in split.column_names else "common"
        box_words = words_of(names, None, source)
    for row in split:
        targets = [(box_words[b["category"]], tuple(b["bbox"])) for b in row["boxes"]] if box_words else []
        if not targets and class_words is not None and row.get("label") is not None:
            targets = [(class_words[row["label"]], None)]
        attributes = tuple(text.format(row[column]) for column, text in _ATTRIBUTE_COLUMNS.items()
                           if row.get(column) not in (None, "", "NA"))
        polarisation = (str(row["polarization"]).upper(),) if row.get("polarization") else ()
        yield ImageFacts(gray=to_gray(row["image"]), targets=tuple(targets), attributes=attributes,
                         sensor=SensorInfo(polarisations=polarisation))


def to_gray(image) -> np.ndarray:
    """A PIL image or an image file path (any raster the SAR reader opens) as the 8-bit grey image."""
    if isinstance(image, (str, Path)):
        from modeling_sarclip.sar_raster_sarclip import read_sar_raster

        data = read_sar_raster(image, metadata=False).array
        valid = np.all(np.isfinite(data), axis=2) if data.dtype.kind == "f" else np.ones(data.shape[:2], bool)
        return data[..., 0] if data.dtype == np.uint8 else compress_to_uint8(data, valid)[..., 0]
    return np.asarray(image.convert("L"))


def describe_split(split: datasets.Dataset, task: HCoTTask | None = None) -> datasets.Dataset:
    """`split` with the 8 HCoT field columns and their concatenation `text` added (SAR-GEOVL's text schema)."""
    rows = [compose_subtexts(facts, task) for facts in dataset_facts(split)]
    for name in SUBTEXT_FIELDS:
        split = split.add_column(name, [row[name] for row in rows])
    return split.add_column("text", [join_subtexts(row) for row in rows])


def describe_dataset(data: str, out_dir: str | Path, task: HCoTTask | None = None) -> datasets.DatasetDict:
    """Every split of `data` (``dataset_scripts.loading.load_image_text_data``) with its HCoT fields, written as a
    dataset folder (`python -m dataset_scripts.geovl describe`); SCIO reads the fields as its 8 sub-texts."""
    from ..export import write_dataset_folder
    from ..loading import load_image_text_data

    described = datasets.DatasetDict({name: describe_split(split, task)
                                      for name, split in load_image_text_data(data).items()})
    if any(isinstance(split.features["image"], datasets.Value) for split in described.values()):
        described = described.cast_column("image", datasets.Image())  # paths -> embedded images
    card = ("---\ntask_categories:\n- image-to-text\ntags:\n- sar\n---\n# HCoT fields composed from labels "
            f"(no LLM)\n\nSource: `{data}`. Each row: the image, its columns, the 8 HCoT fields "
            f"({', '.join(SUBTEXT_FIELDS)}) and their concatenation `text` (dataset_scripts/geovl/label_captions.py).\n")
    write_dataset_folder(out_dir, {name: [split] for name, split in described.items()}, card)
    return described


class FactCaptioner:
    """The pipeline's no-LLM backend (``build_geovl_dataset(..., captioner=FactCaptioner())``): each tile's fields
    from its geo-referencing, sensor and measured image statistics."""

    model_id = "facts"

    def subtexts(self, context: TileContext, task: HCoTTask, sensor: SensorInfo, gray: np.ndarray) -> dict[str, str]:
        return compose_subtexts(facts_from_tile(context, sensor, gray), task)


__all__ = ["FactCaptioner", "ImageFacts", "compose_subtexts", "dataset_facts", "describe_dataset", "describe_split", "facts_from_tile", "to_gray"]
