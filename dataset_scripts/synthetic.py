"""Synthetic SAR chips: the built-in data set for demos, quick-starts and tests (no files needed).

Each chip is a reflectivity map in dB (clutter texture + one class-shaped target + its radar shadow) plus
multiplicative speckle, stored as an 8-bit image of dB values like common 8-bit SAR products.

Modelling choices:
- Speckle: intensity = reflectivity * Gamma(L, 1/L) (fully developed speckle, L looks), added in dB. For speed the
  Gamma draws come from a seeded bank of ``SPECKLE_BANK_SIZE`` values read at a random offset per chip: the pixels
  of a chip are independent Gamma draws, while different chips may reuse draws of the bank.
- Geometry: the radar looks from the top of the image (near range at the top), so shadows fall downwards and
  building walls facing the top give the bright double-bounce line.
- Classes sit on their usual clutter (ship: sea; vehicle, aircraft, storage tank: land; building: urban) and differ
  in shape, so that a tiny CLIP learns them in minutes.
"""

from __future__ import annotations

import dataclasses
import functools
import io
import math

import datasets
import numpy as np
from PIL import Image

from .captions import ClassNameTable, classification_captions, detection_captions
from .features import classification_features

CLASSES = ("vehicle", "ship", "aircraft", "storage_tank", "building")
CLUTTERS = ("sea", "land", "urban")
DB_RANGE = (-30.0, 20.0)  # dB mapped linearly to 0..255
SHADOW_DB = -26.0  # receiver noise floor inside radar shadows
SPECKLE_BANK_SIZE = 1 << 21
MAX_TARGETS_WITH_BOXES = 3


@dataclasses.dataclass
class SyntheticChip:
    image: np.ndarray  # uint8 (H, W)
    label: int
    clutter: str
    boxes: list[tuple[tuple[float, float, float, float], str]]  # ((x0, y0, x1, y1) pixels, class name)
    captions: list[str]

    @property
    def class_name(self) -> str:
        return CLASSES[self.label]


@functools.cache
def _coords(size: int) -> np.ndarray:
    return np.arange(size, dtype=np.float32)


@functools.cache
def _upsampler(size: int, coarse: int) -> np.ndarray:
    """(size, coarse) bilinear interpolation matrix: smooth textures from a coarse random grid in two matmuls."""
    positions = np.linspace(0, coarse - 1, size)
    lower = np.floor(positions).astype(int).clip(0, coarse - 2)
    frac = (positions - lower).astype(np.float32)
    matrix = np.zeros((size, coarse), np.float32)
    matrix[np.arange(size), lower] = 1 - frac
    matrix[np.arange(size), lower + 1] = frac
    return matrix


@functools.cache
def speckle_bank_db(seed: int, looks: float) -> np.ndarray:
    """10*log10 of Gamma(L, 1/L) intensity speckle (mean 1), float32."""
    rng = np.random.default_rng((seed, 7919))
    return (10 * np.log10(rng.gamma(looks, 1 / looks, SPECKLE_BANK_SIZE))).astype(np.float32)


class SyntheticSarGenerator:
    """Deterministic SAR-like chips: chip ``index`` of ``stream`` depends only on (seed, stream, index)."""

    def __init__(self, image_size: int = 128, looks: float = 3.0, seed: int = 0, with_boxes: bool = False):
        if not (32 <= image_size and image_size**2 < SPECKLE_BANK_SIZE):
            raise ValueError(f"image_size must be in [32, {math.isqrt(SPECKLE_BANK_SIZE - 1)}], got {image_size}")
        self.size = image_size
        self.looks = looks
        self.seed = seed
        self.with_boxes = with_boxes
        self.scale = image_size / 128
        table = ClassNameTable("common")
        self.names = {name: table[name] for name in CLASSES}

    # --- clutter -------------------------------------------------------------------------------------------------
    def _texture(self, rng: np.random.Generator, coarse: int, std_db: float) -> np.ndarray:
        up = _upsampler(self.size, coarse)
        return up @ (rng.standard_normal((coarse, coarse), dtype=np.float32) * std_db) @ up.T

    def _clutter(self, kind: str, rng: np.random.Generator) -> np.ndarray:
        if kind == "sea":  # swell: sin(a x + b y), expanded so that only 1-D sines are computed
            angle, wavelength = rng.uniform(0, np.pi), rng.uniform(6, 12) * self.scale
            along_x = _coords(self.size) * np.float32(math.cos(angle) * 2 * math.pi / wavelength)
            along_y = _coords(self.size) * np.float32(math.sin(angle) * 2 * math.pi / wavelength)
            waves = (np.sin(along_y)[:, None] * np.float32(1.2)) * np.cos(along_x)[None, :] + (
                np.cos(along_y)[:, None] * np.float32(1.2)) * np.sin(along_x)[None, :]
            return -19.0 + self._texture(rng, 6, 1.0) + waves
        if kind == "land":
            return -11.0 + self._texture(rng, 8, 2.5)
        db = -8.0 + self._texture(rng, 10, 1.5)  # urban: many small bright scatterers
        count = int(60 * self.scale**2)
        db[rng.integers(0, self.size, count), rng.integers(0, self.size, count)] += 13.0
        return db

    # --- targets -------------------------------------------------------------------------------------------------
    def _frame(self, cx: float, cy: float, angle: float) -> tuple[np.ndarray, np.ndarray]:
        """Target coordinates: u along the target axis, v across it."""
        dx, dy = _coords(self.size) - np.float32(cx), _coords(self.size) - np.float32(cy)
        c, s = np.float32(math.cos(angle)), np.float32(math.sin(angle))
        return (dx * c)[None, :] + (dy * s)[:, None], (dy * c)[:, None] - (dx * s)[None, :]

    @staticmethod
    def _points(db: np.ndarray, mask: np.ndarray, rng: np.random.Generator, count: int, level: float) -> None:
        """Bright point scatterers at random pixels of ``mask``."""
        pixels = np.flatnonzero(mask)
        if len(pixels):
            db.flat[pixels[rng.integers(0, len(pixels), count)]] = level

    def _shadow(self, mask: np.ndarray, length: int) -> np.ndarray:
        shadow = np.zeros_like(mask)
        for step in range(1, max(length, 1) + 1):
            shadow[step:] |= mask[:-step]
        return shadow & ~mask

    def _draw(self, db: np.ndarray, cls: str, cx: float, cy: float, rng: np.random.Generator) -> np.ndarray:
        """Draw one target into ``db``; returns its body mask (for the box)."""
        k = self.scale
        if cls == "vehicle":
            u, v = self._frame(cx, cy, rng.uniform(0, np.pi))
            length, width = rng.uniform(14, 20) * k, rng.uniform(7, 10) * k
            body = (np.abs(u) < length / 2) & (np.abs(v) < width / 2)
            db[self._shadow(body, int(rng.uniform(6, 10) * k))] = SHADOW_DB
            db[body] = 2.0
            self._points(db, body, rng, 8, 15.0)
        elif cls == "ship":
            u, v = self._frame(cx, cy, rng.uniform(0, np.pi))
            length, width = rng.uniform(44, 70) * k, rng.uniform(8, 12) * k
            body = (u / (length / 2)) ** 2 + (v / (width / 2)) ** 2 < 1
            db[body] = 4.0
            db[body & (np.abs(v) < 1.0 * k)] = 10.0  # keel line
            stern = rng.choice([-1, 1]) * length * 0.3
            db[body & (np.abs(u - stern) < 4 * k)] = 14.0  # superstructure
        elif cls == "aircraft":
            u, v = self._frame(cx, cy, rng.uniform(0, 2 * np.pi))
            length, span = rng.uniform(34, 46) * k, rng.uniform(32, 42) * k
            fuselage = (np.abs(u) < length / 2) & (np.abs(v) < 2.5 * k)
            wings = (np.abs(u - 0.1 * length + 0.25 * np.abs(v)) < 3.5 * k) & (np.abs(v) < span / 2)
            tail = (np.abs(u + 0.42 * length) < 2.5 * k) & (np.abs(v) < span / 5)
            body = fuselage | wings | tail
            db[self._shadow(body, int(3 * k))] = SHADOW_DB
            db[body] = 3.0
            self._points(db, body, rng, 10, 13.0)
        elif cls == "storage_tank":
            u, v = self._frame(cx, cy, 0.0)
            radius = rng.uniform(11, 17) * k
            r = np.sqrt(u * u + v * v)
            body = r < radius + 1.5 * k
            db[self._shadow(body, int(radius * 0.6))] = SHADOW_DB
            db[body] = -6.0  # roof
            rim = np.abs(r - radius) < 1.5 * k
            db[rim] = 9.0
            db[rim & (v < 0)] = 14.0  # the near-range half of the rim is brightest
        elif cls == "building":
            u, v = self._frame(cx, cy, rng.uniform(-0.3, 0.3))
            half_w, half_h = rng.uniform(14, 24) * k, rng.uniform(9, 16) * k
            body = (np.abs(u) < half_w) & (np.abs(v) < half_h)
            db[self._shadow(body, int(rng.uniform(12, 20) * k))] = SHADOW_DB
            db[body] = -3.0 + self._texture(rng, 4, 1.0)[body]
            db[body & (np.abs(v + half_h) < 1.5 * k)] = 15.0  # double bounce of the wall facing the radar
        else:
            raise ValueError(f"unknown synthetic class {cls!r}")
        db[body] += rng.normal(0.0, 2.5, int(body.sum())).astype(np.float32)  # scintillation of the target's scatterers
        return body

    # --- speckle -------------------------------------------------------------------------------------------------
    def speckled_image(self, reflectivity_db: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        """Multiply a reflectivity map (dB) by Gamma(L, 1/L) intensity speckle and quantise the dB values to 8 bits
        (``DB_RANGE`` -> 0..255, rounded): pixel value v stands for intensity 10 ** ((low + v * step) / 10)."""
        size = reflectivity_db.size
        offset = int(rng.integers(0, SPECKLE_BANK_SIZE - size))
        speckle_db = speckle_bank_db(self.seed, self.looks)[offset:offset + size].reshape(reflectivity_db.shape)
        db = reflectivity_db + speckle_db
        low, high = DB_RANGE
        return (np.clip((db - low) * np.float32(255.0 / (high - low)), 0, 255) + np.float32(0.5)).astype(np.uint8)

    # --- chips ---------------------------------------------------------------------------------------------------
    def chip(self, index: int, stream: int = 0) -> SyntheticChip:
        """Chip ``index`` of ``stream`` (0 = train, 1 = test): class ``index % 5``, balanced."""
        rng = np.random.default_rng((self.seed, stream, index))
        label = index % len(CLASSES)
        cls = CLASSES[label]
        clutter = {"ship": "sea", "building": "urban"}.get(cls, "land")
        db = self._clutter(clutter, rng)
        boxes = []
        count = int(rng.integers(1, MAX_TARGETS_WITH_BOXES + 1)) if self.with_boxes else 1
        # One target: near the centre. Several: anywhere, 10 tries each to find a place where the target lies fully
        # inside the image and its box overlaps no other box; a target without such a place is left out, except
        # the first, which then goes to the centre (every chip shows its class).
        near, far = (0.4, 0.6) if count == 1 else (0.15, 0.85)
        for _ in range(count):
            for attempt in range(11 if not boxes else 10):
                cx, cy = rng.uniform(near * self.size, far * self.size, 2) if attempt < 10 else (self.size / 2,) * 2
                trial = db.copy()
                box = _bounding_box(self._draw(trial, cls, cx, cy, rng))
                inside = box[0] > 0 and box[1] > 0 and box[2] < self.size and box[3] < self.size
                if attempt == 10 or (inside and all(not _overlap(box, other) for other, _ in boxes)):
                    db = trial
                    boxes.append((box, cls))
                    break
        image = self.speckled_image(db, rng)
        key = f"synthetic/{stream}/{index}"
        if self.with_boxes:
            captions = detection_captions(boxes, self.size, self.size, self.names, key, self.seed)
        else:
            captions = classification_captions(self.names[cls].singular, key, self.seed)
        return SyntheticChip(image=image, label=label, clutter=clutter, boxes=boxes, captions=captions)


def _bounding_box(mask: np.ndarray) -> tuple[float, float, float, float]:
    """Pixel (x0, y0, x1, y1) of a non-empty mask, x1/y1 exclusive."""
    rows, cols = mask.any(axis=1), mask.any(axis=0)
    return (float(cols.argmax()), float(rows.argmax()),
            float(len(cols) - cols[::-1].argmax()), float(len(rows) - rows[::-1].argmax()))


def _overlap(a, b) -> bool:
    return not (a[2] <= b[0] or b[2] <= a[0] or a[3] <= b[1] or b[3] <= a[1])


def png_bytes(image: np.ndarray) -> bytes:
    """Lossless PNG (fast compression level: speckle barely compresses)."""
    buffer = io.BytesIO()
    Image.fromarray(image).save(buffer, format="PNG", compress_level=1)
    return buffer.getvalue()


def synthetic_example(chip: SyntheticChip, split: str, index: int, with_boxes: bool) -> dict:
    """A chip as a row of the synthetic dataset's features."""
    example = {
        "image": {"bytes": png_bytes(chip.image), "path": f"{split}_{index:07d}.png"},
        "captions": chip.captions,
        "label": chip.label,
        "source": "synthetic",
        "split": split,
        "clutter": chip.clutter,
    }
    if with_boxes:
        example["boxes"] = [{"bbox": list(box), "category": CLASSES.index(cls)} for box, cls in chip.boxes]
    return example


def synthetic_features(with_boxes: bool) -> datasets.Features:
    extra = {"clutter": datasets.Value("string")}
    if with_boxes:
        extra["boxes"] = datasets.List({"bbox": datasets.List(datasets.Value("float32"), length=4),
                                        "category": datasets.ClassLabel(names=list(CLASSES))})
    return classification_features(list(CLASSES), extra)


def synthetic_dataset(
    num_train: int = 1000, num_test: int = 200, image_size: int = 128, seed: int = 0, looks: float = 3.0,
    with_boxes: bool = False,
) -> datasets.DatasetDict:
    """The synthetic SAR image-text set in memory (train/test), no files: same features as the built dataset."""
    generator = SyntheticSarGenerator(image_size, looks, seed, with_boxes)
    features = synthetic_features(with_boxes)
    splits = {}
    for stream, (split, count) in enumerate((("train", num_train), ("test", num_test))):
        rows = [synthetic_example(generator.chip(i, stream), split, i, with_boxes) for i in range(count)]
        columns = {name: [row[name] for row in rows] for name in features}
        splits[split] = datasets.Dataset.from_dict(columns, features=features, split=split)
    return datasets.DatasetDict(splits)
