"""What an archive index holds: one row per chip (anything `--data` takes) or per SRC tile of GeoTIFF scenes, and how
to get each row's pixels back.

Rows are listed in a fixed order (splits in order, then rows; scenes sorted by path, then tiles row-major), so that
a resumed build embeds exactly the rows a killed one had not reached.

GeoTIFF scenes are tiled with the SAR-GEOVL tiler (`dataset_scripts.geovl.tiling.src_tiles`: square tiles of
`tile_side_m` metres, incomplete border windows dropped); each tile keeps its WGS84 footprint. Choices the papers do
not make for search: a tile with less than `min_valid` of valid pixels (finite, not nodata) is skipped and counted;
the invalid pixels of a kept tile are filled with the median of its valid ones per band, so that a nodata border
neither breaks the processor (NaN) nor shows up as a bright or dark edge.
"""

from __future__ import annotations

import functools
import itertools
from dataclasses import dataclass, field
from pathlib import Path

import datasets
import numpy as np

from dataset_scripts.captions.class_names import label_class_words
from dataset_scripts.geovl.geotiff import GeoRaster, read_geotiff
from dataset_scripts.geovl.tiling import PAPER_TILE_SIDE_M, Window, src_tiles

GEOTIFF_SUFFIXES = (".tif", ".tiff")
DEFAULT_MIN_VALID = 0.5


@dataclass
class Corpus:
    """`rows`: dicts with the index's columns (`id`, `split`, `row`, `path`, `label`, `caption`, `scene`, `window`,
    `footprint`); `pixels(rows)` -> what the SARCLIP processor takes for them (paths, images or rasters)."""

    kind: str  # "dataset" or "scenes"
    source: str  # the DATA argument
    rows: list[dict]
    skipped: dict[str, int] = field(default_factory=dict)  # why -> how many tiles were left out
    dataset: datasets.DatasetDict | None = None
    class_words: dict[str, str] = field(default_factory=dict)  # label -> its caption words (prompts, app labels)

    def pixels(self, rows: list[dict]) -> list:
        if self.kind == "dataset":  # one indexing call per run of rows of a split (chunks are contiguous)
            return [image for split, group in itertools.groupby(rows, key=lambda row: row["split"])
                    for image in self.dataset[split][[row["row"] for row in group]]["image"]]
        return [scene_tile(row["scene"], row["window"]) for row in rows]


def is_scene_source(data: str) -> bool:
    """DATA names GeoTIFF scenes: a .tif/.tiff file, or a folder whose entries are .tif/.tiff files only (no class
    subfolders, which would make it a folder of labelled chips)."""
    path = Path(data)
    if path.is_file():
        return path.suffix.lower() in GEOTIFF_SUFFIXES
    if not path.is_dir():
        return False
    entries = [entry for entry in path.iterdir() if not entry.name.startswith(".")]
    return bool(entries) and all(entry.is_file() and entry.suffix.lower() in GEOTIFF_SUFFIXES for entry in entries)


def dataset_corpus(source: str, dataset: datasets.DatasetDict, splits: list[str] | None = None,
                   words: dict[str, str] | None = None) -> Corpus:
    """Every row of `splits` (default: all) of a loaded `--data` set; `label` is the class name where the data has
    labels (spelled in prompts as `class_names.label_class_words` spells it, with the user's `words`), `caption` the
    first caption where the data has captions and no labels."""
    splits = splits or list(dataset)
    unknown = [split for split in splits if split not in dataset]
    if unknown:
        raise ValueError(f"{source}: no split {unknown[0]!r} (splits: {list(dataset)})")
    rows, class_words = [], {}
    for split in splits:
        part = dataset[split]
        names = part.features["label"].names if isinstance(part.features.get("label"), datasets.ClassLabel) else None
        if names:
            class_words.update(zip(names, label_class_words(part, words)))
        paths = _image_paths(part)
        labels = part["label"] if "label" in part.column_names else [None] * len(part)
        captions = part["captions"] if "captions" in part.column_names else [None] * len(part)
        for i in range(len(part)):
            label = labels[i]
            rows.append(dict(
                id=f"{split}/{i}", split=split, row=i, path=paths[i],
                label=None if label is None else (names[label] if names else str(label)),
                caption=None if label is not None else _first(captions[i]),
                scene=None, window=None, footprint=None,
            ))
    return Corpus("dataset", source, rows, dataset=dataset, class_words=class_words)


def _first(captions) -> str | None:
    return (captions[0] if captions else None) if isinstance(captions, list) else captions


def _image_paths(split: datasets.Dataset) -> list[str | None]:
    """The file each row's image is read from, where there is one."""
    if "image" not in split.column_names:
        raise ValueError(f"split {split.split}: no `image` column (columns: {split.column_names})")
    feature = split.features["image"]
    if isinstance(feature, datasets.Image):
        paths = [item.get("path") for item in split.cast_column("image", datasets.Image(decode=False))["image"]]
    elif isinstance(feature, datasets.Value) and feature.dtype == "string":
        paths = list(split["image"])
    else:
        return [None] * len(split)
    # a name stored with in-memory image bytes (built or synthetic sets) is not a file: such rows are shown from the
    # data set itself
    return [path if path and Path(path).is_file() else None for path in paths]


def scene_files(data: str) -> list[Path]:
    path = Path(data)
    if path.is_file():
        return [path]
    return sorted(entry for entry in path.iterdir() if entry.suffix.lower() in GEOTIFF_SUFFIXES
                  and not entry.name.startswith("."))


def scene_corpus(data: str, tile_side_m: float = PAPER_TILE_SIDE_M, min_valid: float = DEFAULT_MIN_VALID) -> Corpus:
    """SRC tiles of every scene (module docstring). A scene that is not geo-referenced is an error naming it."""
    rows, skipped = [], {"border windows": 0, "tiles with too few valid pixels": 0}
    for path in scene_files(data):
        raster, valid = read_scene(str(path))
        tiles, partial = src_tiles(raster, tile_side_m, id_prefix=path.stem)
        skipped["border windows"] += partial
        for tile in tiles:
            if not tile.window.crop(valid).any() or tile.window.crop(valid).mean() < min_valid:
                skipped["tiles with too few valid pixels"] += 1
                continue
            w = tile.window
            rows.append(dict(
                id=tile.tile_id, split=None, row=None, path=str(path), label=None, caption=None,
                scene=str(path), window=[w.row_off, w.col_off, w.height, w.width],
                footprint=list(tile.bounds_lonlat),
            ))
    if not rows:
        raise ValueError(f"{data}: no tile of {tile_side_m} m with at least {min_valid:.0%} valid pixels in "
                         f"{len(scene_files(data))} scene(s) ({skipped}); use a smaller --tile-side-m")
    return Corpus("scenes", data, rows, skipped={k: v for k, v in skipped.items() if v})


@functools.lru_cache(maxsize=1)  # tiles are read scene by scene: one scene in memory at a time
def read_scene(path: str) -> tuple[GeoRaster, np.ndarray]:
    """A scene and its valid-pixel mask."""
    raster = read_geotiff(path)
    return raster, raster.valid_mask()


def scene_tile(scene: str, window: list[int]) -> np.ndarray:
    """The (H, W, bands) pixels of one tile, invalid pixels filled with the tile's valid median per band."""
    raster, valid = read_scene(scene)
    window = Window(*window)
    tile = window.crop(raster.data)
    valid = window.crop(valid)
    if valid.all():
        return tile
    tile = tile.copy()
    for band in range(tile.shape[2]):
        tile[:, :, band][~valid] = np.median(tile[:, :, band][valid])
    return tile
