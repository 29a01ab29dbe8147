"""Small real VQA sets (paper 4.4, Table 6: target count / recognition / position), train and test.

- HRSID ship boxes and SAR-AIRcraft-1.0 aircraft boxes (COCO json) -> counting, region-wise recognition
  and position questions; split 4:1 by image as the paper does (sorted image ids, every fifth one is test);
- MSTAR SOC chips -> recognition; train = the 17 degree train chips, test = the 15 degree test chips.

On disk (`save_vqa_sets`) each image is stored once, in the split `images` (columns `image`, `image_id`,
`dataset`); question rows (`train`, `test`) have `image` empty and refer to their image by `image_id`
(unique over the three sources). `load_vqa_sets(folder)` returns the question splits with their images joined.

Region numbering: the paper asks for "the region number containing the target" without drawing the
grid in text. The question comes first and the grid explanation after it, so that a short text budget (paper
Table 5: 35 tokens) truncates the constant explanation, not the region asked about. We split the image into a 3 x 3 grid numbered 1-9 row by row from the top-left
(1 2 3 / 4 5 6 / 7 8 9); a target belongs to the region holding its box centre. When several
targets are asked about at once, the answer lists the region numbers (or class names) in ascending,
de-duplicated order, separated by ", ".

Training views (`train_views=8`, choice): each train image of the two detection sources is also stored in its other 7
dihedral views (rotations by 90 degrees and flips), with its boxes carried along and every answer recomputed; test
images stay as they are. A few dozen detection images give only a few dozen position questions (49 train questions
here), too few to learn nine region numbers from; flips and right-angle rotations are the standard geometric
augmentation of SAR ship and aircraft detectors, and they change where targets are, not what they are.
"""

from __future__ import annotations

import csv
import io
import json
from collections import defaultdict
from pathlib import Path

import datasets
from PIL import Image

from ..cards import dataset_card
from ..export import write_dataset_folder

GRID = 3
# Task type names as in modeling_knowlip's VQA_TASK_TYPES (paper Table 6); the three landform types need
# land-cover segmentation labels, which none of these sources has.
TASK_COUNT, TASK_RECOGNITION, TASK_POSITION = "target count", "target recognition", "target position"
_GRID_TEXT = (
    "The image is divided into a 3 x 3 grid of regions numbered 1 to 9 row by row from the top-left "
    "(1 2 3 / 4 5 6 / 7 8 9)."
)

# one schema for every split: question rows leave `image` empty, rows of the `images` split leave the question empty
VQA_FEATURES = datasets.Features(
    {
        "image": datasets.Image(),
        "question": datasets.Value("string"),
        "answer": datasets.Value("string"),
        "task_type": datasets.Value("string"),
        "dataset": datasets.Value("string"),
        "image_id": datasets.Value("string"),
    }
)


def region_number(box_xywh: list[float], width: int, height: int, grid: int = GRID) -> int:
    """1-based region (row-major, from the top-left) of a ``grid x grid`` split that holds the box centre."""
    x, y, w, h = box_xywh
    cx, cy = x + w / 2, y + h / 2
    if not (0 <= cx <= width and 0 <= cy <= height):
        raise ValueError(f"box {box_xywh} has its centre outside the {width}x{height} image")
    col = min(int(cx * grid / width), grid - 1)
    row = min(int(cy * grid / height), grid - 1)
    return row * grid + col + 1


# dihedral views: name -> PIL transpose (None: the image as it is); the box maps below follow the same transforms
VIEWS = {
    "": None,
    "flip_lr": Image.Transpose.FLIP_LEFT_RIGHT,
    "flip_tb": Image.Transpose.FLIP_TOP_BOTTOM,
    "rot90": Image.Transpose.ROTATE_90,
    "rot180": Image.Transpose.ROTATE_180,
    "rot270": Image.Transpose.ROTATE_270,
    "transpose": Image.Transpose.TRANSPOSE,
    "transverse": Image.Transpose.TRANSVERSE,
}


def view_box(box_xywh: list[float], width: int, height: int, view: str) -> list[float]:
    """The box (x, y, w, h) of a ``width x height`` image in its dihedral `view` (PIL's transpose of that name;
    rot90 is counter-clockwise, as PIL's ROTATE_90)."""
    x, y, w, h = box_xywh
    return {
        "": [x, y, w, h],
        "flip_lr": [width - x - w, y, w, h],
        "flip_tb": [x, height - y - h, w, h],
        "rot90": [y, width - x - w, h, w],
        "rot180": [width - x - w, height - y - h, w, h],
        "rot270": [height - y - h, x, h, w],
        "transpose": [y, x, h, w],
        "transverse": [height - y - h, width - x - w, h, w],
    }[view]


def _view_image(path: Path, view: str):
    """The image file as it is (its path), or its dihedral view as PNG bytes."""
    if not view:
        return str(path)
    with Image.open(path) as image:
        buffer = io.BytesIO()
        image.transpose(VIEWS[view]).save(buffer, format="PNG")
    return {"bytes": buffer.getvalue(), "path": None}


def _join(items) -> str:
    return ", ".join(str(i) for i in sorted(set(items)))


def held_out_image_ids(image_ids) -> set[str]:
    """The test images of one detection source: every fifth of its sorted image ids (the paper's 4:1 split)."""
    return set(sorted(set(image_ids))[4::5])


def _detection_vqa(coco_json: Path, dataset: str, noun: str, plural: str, fine_grained: bool,
                   train_views: int = 1) -> datasets.Dataset:
    coco = json.loads(coco_json.read_text(encoding="utf-8"))
    names = {c["id"]: c["name"] for c in coco["categories"]}
    boxes = defaultdict(list)
    for ann in coco["annotations"]:
        boxes[ann["image_id"]].append(ann)
    image_id = {image["id"]: f"{dataset}/{Path(image['file_name']).stem}" for image in coco["images"]}
    held_out = held_out_image_ids(image_id.values())
    rows = []
    for image in coco["images"]:
        path = coco_json.parent / image["file_name"]
        if not path.is_file():
            raise FileNotFoundError(f"{coco_json}: image {image['file_name']} not found at {path}")
        for view in list(VIEWS)[:1 if image_id[image["id"]] in held_out else train_views]:
            rows += _image_questions(path, image, view, boxes[image["id"]], names, image_id[image["id"]], dataset,
                                     noun, plural, fine_grained)
    return datasets.Dataset.from_list(rows, features=VQA_FEATURES)


def _image_questions(path, image, view, anns, names, image_id, dataset, noun, plural, fine_grained) -> list[dict]:
    width, height = (image["height"], image["width"]) if view in ("rot90", "rot270", "transpose", "transverse") \
        else (image["width"], image["height"])
    base = {"image": _view_image(path, view), "dataset": dataset, "image_id": f"{image_id}@{view}" if view else image_id}
    rows = [{**base, "task_type": TASK_COUNT, "question": f"How many {plural} are in the image?", "answer": str(len(anns))}]
    regions = defaultdict(list)  # region -> class names
    by_class = defaultdict(list)  # class name -> regions
    for ann in anns:
        region = region_number(view_box(ann["bbox"], image["width"], image["height"], view), width, height)
        regions[region].append(names[ann["category_id"]])
        by_class[names[ann["category_id"]]].append(region)
    for region in sorted(regions):
        kind = f"type of {noun}" if fine_grained else "type of target"
        rows.append({**base, "task_type": TASK_RECOGNITION, "answer": _join(regions[region]),
                     "question": f"What {kind} is in region {region}? {_GRID_TEXT}"})
    for name in sorted(by_class):
        target = f"{name} {noun}" if fine_grained else plural
        rows.append({**base, "task_type": TASK_POSITION, "answer": _join(by_class[name]),
                     "question": f"In which region(s) are the {target} located? {_GRID_TEXT}"})
    return rows


def target_regions(task_types, answers, image_ids) -> dict[str, set[int]]:
    """The regions holding a target, per detection image (`image_id`): the union of its position answers; an image
    whose count question is its only one holds no target. Images without a count question (MSTAR's centred chips)
    are not in the result: their rows say nothing about regions."""
    regions = {}
    for task, answer, image_id in zip(task_types, answers, image_ids):
        if task == TASK_COUNT:
            regions.setdefault(image_id, set())
    for task, answer, image_id in zip(task_types, answers, image_ids):
        if task == TASK_POSITION:
            if image_id not in regions:
                raise ValueError(f"image {image_id} has a position question but no count question")
            regions[image_id] |= {int(region) for region in answer.split(", ")}
    return regions


def region_indicator(regions: set[int], grid: int = GRID) -> list[float]:
    """1.0 for each of the ``grid x grid`` regions (numbered 1.. row by row) in `regions`, else 0.0."""
    return [float(region in regions) for region in range(1, grid * grid + 1)]


def hrsid_vqa(data_dir: str | Path, train_views: int = 1) -> datasets.Dataset:
    """HRSID ships (``<data_dir>/hrsid_samples``): count, region-wise recognition ("ship") and position.

    The boxes of the 36 mini_test tiles are connected components of a semantic mask, so touching ships
    count as one (see that folder's SOURCE.md).
    """
    return _detection_vqa(Path(data_dir) / "hrsid_samples" / "annotations_coco.json", "hrsid", "ship", "ships", False,
                          train_views)


def sar_aircraft_vqa(data_dir: str | Path, train_views: int = 1) -> datasets.Dataset:
    """SAR-AIRcraft-1.0 (``<data_dir>/sar_aircraft_samples``): count, fine-grained type per region, position per type."""
    coco_json = Path(data_dir) / "sar_aircraft_samples" / "annotations_coco.json"
    return _detection_vqa(coco_json, "sar_aircraft", "aircraft", "aircraft", True, train_views)


def mstar_recognition_vqa(data_dir: str | Path, split: str = "test", max_per_class: int | None = None) -> datasets.Dataset:
    """MSTAR SOC chips (``<data_dir>/mstar_soc``): "What type of target...?" -> class name.

    ``max_per_class`` keeps the first N chips of each class in path order (deterministic).
    """
    root = Path(data_dir) / "mstar_soc"
    with open(root / "labels.csv", newline="", encoding="utf-8") as f:
        records = sorted((r for r in csv.DictReader(f) if r["split"] == split), key=lambda r: r["path"])
    if not records:
        raise ValueError(f"{root / 'labels.csv'}: no chip in split {split!r}")
    taken = defaultdict(int)
    rows = []
    for r in records:
        if max_per_class is not None and taken[r["label"]] >= max_per_class:
            continue
        taken[r["label"]] += 1
        rows.append({
            "image": str(root / r["path"]),
            "question": "What type of target is in this SAR image?",
            "answer": r["label"],
            "task_type": TASK_RECOGNITION,
            "dataset": "mstar",
            "image_id": f"mstar/{r['path']}",
        })
    return datasets.Dataset.from_list(rows, features=VQA_FEATURES)


def vqa_splits(data_dir: str | Path, mstar_per_class: int | None = None, train_views: int = 1) -> datasets.DatasetDict:
    """`train` and `test` question sets (images as file paths, or PNG bytes for the extra training views) of the
    three sources (module docstring); `train_views`: 1 to 8 dihedral views of each detection train image."""
    if not 1 <= train_views <= len(VIEWS):
        raise ValueError(f"train_views must be 1 to {len(VIEWS)} (dihedral views of a train image), got {train_views}")
    detection = datasets.concatenate_datasets([hrsid_vqa(data_dir, train_views), sar_aircraft_vqa(data_dir, train_views)])
    test_ids = set().union(*(held_out_image_ids(i for i in detection["image_id"] if i.startswith(f"{name}/") and "@" not in i)
                             for name in ("hrsid", "sar_aircraft")))
    in_test = [image_id in test_ids for image_id in detection["image_id"]]
    return datasets.DatasetDict({
        split: datasets.concatenate_datasets([
            detection.select([i for i, flag in enumerate(in_test) if flag == (split == "test")]),
            mstar_recognition_vqa(data_dir, split, mstar_per_class)])
        for split in ("train", "test")
    })


def save_vqa_sets(data_dir: str | Path, out_dir: str | Path, mstar_per_class: int | None = None,
                  train_views: int = 1) -> datasets.DatasetDict:
    """The `train` / `test` questions and the `images` split (each image once, embedded) written to ``out_dir``
    with a dataset card; returns the question splits with their images (as `load_vqa_sets` does)."""
    splits = vqa_splits(data_dir, mstar_per_class, train_views)
    images = {}  # image_id -> {"path", "bytes"}, first-seen order
    for split in splits.values():
        for image_id, image in zip(split["image_id"], split.cast_column("image", datasets.Image(decode=False))["image"]):
            images.setdefault(image_id, image)
    image_rows = datasets.Dataset.from_dict(
        {"image": list(images.values()), "image_id": list(images), "dataset": [i.split("/")[0] for i in images],
         "question": [None] * len(images), "answer": [None] * len(images), "task_type": [None] * len(images)},
        features=VQA_FEATURES)
    questions = {name: split.remove_columns("image").add_column("image", [None] * len(split)).cast(VQA_FEATURES)
                 for name, split in splits.items()}
    # The card has no `configs:` block (see pipeline._dataset_card): the file name gives the split.
    counts = defaultdict(int)
    for name, split in splits.items():
        for dataset, task in zip(split["dataset"], split["task_type"]):
            counts[f"{name} | {dataset}/{task}"] += 1
    table = "\n".join(f"| {k} | {v} |" for k, v in sorted(counts.items()))
    card = dataset_card(
        "SAR VQA sets (HRSID, SAR-AIRcraft-1.0, MSTAR SOC)",
        "Question/answer pairs from real annotations (SAR-KnowLIP Table 6 task types). " + _GRID_TEXT + "\n"
        "A target's region is the one holding its box centre; multiple answers are listed ascending, ', '-separated.\n"
        "Each image is stored once, in the split `images`; question rows (`train`, `test`) refer to it by `image_id` "
        "(`dataset_scripts.geovl.load_vqa_sets` joins them); an id `ID@VIEW` is a dihedral view of a train image "
        f"({train_views} view(s) per detection train image). HRSID and SAR-AIRcraft are split 4:1 by image; MSTAR "
        "train/test are its 17/15 degree chips.\nResearch-only source data: see each source folder's SOURCE.md for "
        "licences.\n\n| split | dataset/task | questions |\n|---|---|---|\n" + table + "\n",
        ["visual-question-answering"], rows=sum(counts.values()))
    write_dataset_folder(out_dir, {**{name: [split] for name, split in questions.items()}, "images": [image_rows]},
                         card)
    return load_vqa_sets(out_dir)


def load_vqa_sets(folder: str | Path) -> datasets.DatasetDict:
    """The question splits of a `save_vqa_sets` folder with each row's image joined from the `images` split (a
    folder without that split, which stored the image in every row, is returned as it is)."""
    loaded = datasets.load_dataset(str(folder))
    if "images" not in loaded:
        return loaded
    images = loaded.pop("images")
    position = {image_id: i for i, image_id in enumerate(images["image_id"])}
    joined = {}
    for name, split in loaded.items():
        if missing := sorted(set(split["image_id"]) - set(position))[:3]:
            raise ValueError(f"{folder}: {name} questions refer to images not in the images split, e.g. {missing}")
        pixels = images.select([position[i] for i in split["image_id"]]).select_columns(["image"])
        joined[name] = datasets.concatenate_datasets([split.remove_columns("image"), pixels], axis=1)
    return datasets.DatasetDict(joined)
