"""What `python -m train search ... --out DIR` writes: `hits.json`, a contact sheet PNG of the hits (SAR-rendered with
the processor's radiometry) and, for GeoTIFF tiles, `footprints.geojson` (WGS84 polygons with rank and score)."""

from __future__ import annotations

import json
from pathlib import Path

from PIL import Image, ImageDraw

from sar_utils.atomic import atomic_folder

THUMB = 192
COLUMNS = 5
LABEL_HEIGHT = 28


def contact_sheet(thumbnails: list[Image.Image], hits: list[dict], columns: int = COLUMNS) -> Image.Image:
    """Thumbnails in rank order on a grid, each captioned `#rank score` and its label or id."""
    side = thumbnails[0].width
    rows = -(-len(thumbnails) // columns)
    sheet = Image.new("RGB", (min(columns, len(thumbnails)) * side, rows * (side + LABEL_HEIGHT)), "white")
    draw = ImageDraw.Draw(sheet)
    for i, (thumbnail, hit) in enumerate(zip(thumbnails, hits)):
        x, y = (i % columns) * side, (i // columns) * (side + LABEL_HEIGHT)
        sheet.paste(thumbnail.resize((side, side)), (x, y))
        draw.text((x + 3, y + side + 2), f"#{hit['rank']}  {hit['score']:.3f}", fill="black")
        draw.text((x + 3, y + side + 14), str(hit["label"] or hit["id"])[:30], fill="black")
    return sheet


def footprints_geojson(hits: list[dict]) -> dict:
    """A GeoJSON FeatureCollection of the hits' WGS84 footprints (hits without one are left out)."""
    features = []
    for hit in hits:
        if not hit.get("footprint"):
            continue
        lon0, lat0, lon1, lat1 = hit["footprint"]
        features.append({
            "type": "Feature",
            "geometry": {"type": "Polygon",
                         "coordinates": [[[lon0, lat0], [lon1, lat0], [lon1, lat1], [lon0, lat1], [lon0, lat0]]]},
            "properties": {key: hit[key] for key in ("rank", "score", "id", "scene")},
        })
    return {"type": "FeatureCollection", "features": features}


def write_results(out: str | Path, query: dict, hits: list[dict], thumbnails: list[Image.Image]) -> Path:
    """Write the results folder in one rename (an error leaves a previous folder as it was)."""
    out = Path(out)
    with atomic_folder(out) as folder:
        (folder / "hits.json").write_text(json.dumps({"query": query, "hits": hits}, indent=2), encoding="utf-8")
        if thumbnails:
            contact_sheet(thumbnails, hits).save(folder / "contact_sheet.png")
        geojson = footprints_geojson(hits)
        if geojson["features"]:
            (folder / "footprints.geojson").write_text(json.dumps(geojson, indent=2), encoding="utf-8")
    return out
