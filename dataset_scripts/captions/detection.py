"""Captions for detection boxes (SARCLIP-1M recipe): object types and counts, absolute region, relative direction.

Choices where the paper is not exact (documented in dataset_scripts/README.md):
- Regions: the four image quadrants and a centred box of half the image width and height. A box gets the region of
  highest IoU; ties (a small box inside both a quadrant and the centre box) go to the region whose centre is
  nearest to the box centre, then to the first in ``REGIONS`` order.
- Relative direction of target A to target B, from box centres in image coordinates (y grows downwards):
  if |dy| >= |dx|, A is "above" B when A's centre is higher, else "below"; otherwise "left"/"right".
- Five captions per image: slots [count, count, absolute, absolute, relative]; a slot with nothing to describe
  (fewer than two regions occupied, fewer than two targets) takes another count caption.
"""

from __future__ import annotations

from collections import Counter

from .class_names import ClassName
from .classification import CAPTIONS_PER_IMAGE, item_rng
from .templates import REGIONS, CaptionTemplates, load_templates

XYXY = tuple[float, float, float, float]


def region_boxes(width: float, height: float) -> dict[str, XYXY]:
    w2, h2, w4, h4 = width / 2, height / 2, width / 4, height / 4
    return {
        "upper_left": (0, 0, w2, h2),
        "upper_right": (w2, 0, width, h2),
        "bottom_left": (0, h2, w2, height),
        "bottom_right": (w2, h2, width, height),
        "center": (w4, h4, width - w4, height - h4),
    }


def iou(a: XYXY, b: XYXY) -> float:
    iw = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    ih = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = iw * ih
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return inter / union if union > 0 else 0.0


def _centre(box: XYXY) -> tuple[float, float]:
    return (box[0] + box[2]) / 2, (box[1] + box[3]) / 2


def assign_region(box: XYXY, width: float, height: float) -> str:
    """The region (key of ``REGIONS``) with the highest IoU with ``box``; ties by centre distance, then order."""
    cx, cy = _centre(box)

    def score(item: tuple[int, tuple[str, XYXY]]):
        order, (_, region) = item
        rx, ry = _centre(region)
        return (-iou(box, region), (cx - rx) ** 2 + (cy - ry) ** 2, order)

    return min(enumerate(region_boxes(width, height).items()), key=score)[1][0]


def relative_direction(a: XYXY, b: XYXY) -> str | None:
    """Where box ``a`` lies relative to box ``b`` ("above", "below", "left", "right"); None for equal centres."""
    (ax, ay), (bx, by) = _centre(a), _centre(b)
    dx, dy = ax - bx, ay - by
    if dx == 0 and dy == 0:
        return None
    if abs(dy) >= abs(dx):
        return "above" if dy < 0 else "below"
    return "left" if dx < 0 else "right"


def objects_phrase(categories: list[str], names: dict[str, ClassName], article: bool) -> str:
    """Object types with their counts, most frequent first, then by name. With ``article`` (absolute-region
    captions): '2 ships and an aircraft'. Without (the [class] of general/complex templates, which read "the
    [class]"): 'ship' for a single object, '2 ships and 1 aircraft' when several types are listed."""
    counts = Counter(categories)
    groups = sorted(counts.items(), key=lambda item: (-item[1], names[item[0]].singular))
    numeral = not article and len(groups) > 1
    parts = [names[category].counted(n, article, numeral) for category, n in groups]
    return parts[0] if len(parts) == 1 else ", ".join(parts[:-1]) + " and " + parts[-1]


def detection_captions(
    boxes: list[tuple[XYXY, str]],
    width: float,
    height: float,
    names: dict[str, ClassName],
    key: str,
    seed: int = 0,
    templates: CaptionTemplates | None = None,
) -> list[str]:
    """Five captions for an image with ``boxes`` ((x0, y0, x1, y1) pixels, category); ``names`` maps categories
    to caption words. Deterministic in (seed, key). Images without boxes get the "empty" templates, naming the
    plural of every category in ``names`` (or "targets" when ``names`` is empty)."""
    templates = templates or load_templates()
    rng = item_rng(seed, key)
    if not boxes:
        targets = " or ".join(sorted({name.plural for name in names.values()})) or "targets"
        return [t.format(targets=targets) for t in rng.sample(templates.empty, CAPTIONS_PER_IMAGE)]
    regions = [assign_region(box, width, height) for box, _ in boxes]
    by_region: dict[str, list[str]] = {}
    for region, (_, category) in zip(regions, boxes):
        by_region.setdefault(region, []).append(category)

    absolute = []
    for region in rng.sample(sorted(by_region, key=REGIONS.index), min(2, len(by_region))):
        absolute.append(rng.choice(templates.absolute).format(
            objects=objects_phrase(by_region[region], names, article=True), region=templates.regions[region]))

    relative = []
    if len(boxes) >= 2:
        i, j = rng.sample(range(len(boxes)), 2)
        direction = relative_direction(boxes[i][0], boxes[j][0])
        if direction is not None:
            relative.append(rng.choice(templates.relative).format(
                object1=names[boxes[i][1]].singular, region1=templates.regions[regions[i]],
                direction=templates.directions[direction],
                object2=names[boxes[j][1]].singular, region2=templates.regions[regions[j]]))

    counted = objects_phrase([category for _, category in boxes], names, article=False)
    count_templates = iter(rng.sample(templates.classification, CAPTIONS_PER_IMAGE))
    captions = [next(count_templates).format_map({"class": counted}) for _ in range(2)]
    captions += absolute + relative
    while len(captions) < CAPTIONS_PER_IMAGE:
        captions.append(next(count_templates).format_map({"class": counted}))
    return captions
