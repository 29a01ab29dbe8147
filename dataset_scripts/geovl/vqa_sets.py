"""Small real VQA evaluation sets (paper 4.4, Table 6: target count / recognition / position).

- HRSID ship boxes and SAR-AIRcraft-1.0 aircraft boxes (COCO json) -> counting, region-wise recognition
  and position questions;
- MSTAR SOC chips -> recognition.

Region numbering: the paper asks for "the region number containing the target" without drawing the
grid in text. We split the image into a 3 x 3 grid numbered 1-9 row by row from the top-left
(1 2 3 / 4 5 6 / 7 8 9); a target belongs to the region holding its box centre. When several
targets are asked about at once, the answer lists the region numbers (or class names) in ascending,
de-duplicated order, separated by ", ".
"""

from __future__ import annotations

import csv
import json
from collections import defaultdict
from pathlib import Path

import datasets

from ..export import write_dataset_folder

GRID = 3
# Task type names as in modeling_knowlip's VQA_TASK_TYPES (paper Table 6); the three landform types need
# land-cover segmentation labels, which none of these sources has.
TASK_COUNT, TASK_RECOGNITION, TASK_POSITION = "target count", "target recognition", "target position"
_GRID_TEXT = (
    "The image is divided into a 3 x 3 grid of regions numbered 1 to 9 row by row from the top-left "
    "(1 2 3 / 4 5 6 / 7 8 9)."
)

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


def _join(items) -> str:
    return ", ".join(str(i) for i in sorted(set(items)))


def _detection_vqa(coco_json: Path, dataset: str, noun: str, plural: str, fine_grained: bool) -> datasets.Dataset:
    coco = json.loads(coco_json.read_text(encoding="utf-8"))
    names = {c["id"]: c["name"] for c in coco["categories"]}
    boxes = defaultdict(list)
    for ann in coco["annotations"]:
        boxes[ann["image_id"]].append(ann)
    rows = []
    for image in coco["images"]:
        path = coco_json.parent / image["file_name"]
        if not path.is_file():
            raise FileNotFoundError(f"{coco_json}: image {image['file_name']} not found at {path}")
        anns = boxes[image["id"]]
        base = {"image": str(path), "dataset": dataset, "image_id": Path(image["file_name"]).stem}
        rows.append({**base, "task_type": TASK_COUNT, "question": f"How many {plural} are in the image?", "answer": str(len(anns))})
        regions = defaultdict(list)  # region -> class names
        by_class = defaultdict(list)  # class name -> regions
        for ann in anns:
            region = region_number(ann["bbox"], image["width"], image["height"])
            regions[region].append(names[ann["category_id"]])
            by_class[names[ann["category_id"]]].append(region)
        for region in sorted(regions):
            kind = f"type of {noun}" if fine_grained else "type of target"
            rows.append({**base, "task_type": TASK_RECOGNITION, "answer": _join(regions[region]),
                         "question": f"{_GRID_TEXT} What {kind} is in region {region}?"})
        for name in sorted(by_class):
            target = f"{name} {noun}" if fine_grained else plural
            rows.append({**base, "task_type": TASK_POSITION, "answer": _join(by_class[name]),
                         "question": f"{_GRID_TEXT} In which region(s) are the {target} located?"})
    return datasets.Dataset.from_list(rows, features=VQA_FEATURES)


def hrsid_vqa(data_dir: str | Path) -> datasets.Dataset:
    """HRSID ships (``<data_dir>/hrsid_samples``): count, region-wise recognition ("ship") and position.

    The boxes of the 36 mini_test tiles are connected components of a semantic mask, so touching ships
    count as one (see that folder's SOURCE.md).
    """
    return _detection_vqa(Path(data_dir) / "hrsid_samples" / "annotations_coco.json", "hrsid", "ship", "ships", False)


def sar_aircraft_vqa(data_dir: str | Path) -> datasets.Dataset:
    """SAR-AIRcraft-1.0 (``<data_dir>/sar_aircraft_samples``): count, fine-grained type per region, position per type."""
    coco_json = Path(data_dir) / "sar_aircraft_samples" / "annotations_coco.json"
    return _detection_vqa(coco_json, "sar_aircraft", "aircraft", "aircraft", True)


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
            "image_id": r["path"],
        })
    return datasets.Dataset.from_list(rows, features=VQA_FEATURES)


def save_vqa_sets(data_dir: str | Path, out_dir: str | Path, mstar_per_class: int | None = None) -> datasets.Dataset:
    """All three sets concatenated, images embedded, written to ``out_dir/data/test-00000-of-00001.parquet``
    with a dataset card; returns the dataset."""
    ds = datasets.concatenate_datasets(
        [hrsid_vqa(data_dir), sar_aircraft_vqa(data_dir), mstar_recognition_vqa(data_dir, max_per_class=mstar_per_class)]
    )
    # The card has no `configs:` block (see pipeline._dataset_card): the file name gives the split.
    counts = defaultdict(int)
    for dataset, task in zip(ds["dataset"], ds["task_type"]):
        counts[f"{dataset}/{task}"] += 1
    table = "\n".join(f"| {k} | {v} |" for k, v in sorted(counts.items()))
    write_dataset_folder(
        out_dir, {"test": [ds]},
        "---\ntask_categories:\n- visual-question-answering\ntags:\n- sar\n---\n"
        "# SAR VQA evaluation sets (HRSID, SAR-AIRcraft-1.0, MSTAR SOC)\n\n"
        "Question/answer pairs from real annotations (SAR-KnowLIP Table 6 task types). " + _GRID_TEXT + "\n"
        "A target's region is the one holding its box centre; multiple answers are listed ascending, ', '-separated.\n"
        "Research-only source data: see each source folder's SOURCE.md for licences.\n\n"
        "| dataset/task | questions |\n|---|---|\n" + table + "\n",
    )
    return ds
