"""The no-LLM HCoT backend: fields composed from real labels, boxes, AIS metadata and GeoTIFF geo-referencing."""

import json
from collections import Counter

import datasets
import numpy as np
from PIL import Image

from dataset_scripts.export import build_dataset
from dataset_scripts.geovl.__main__ import main as geovl_main
from dataset_scripts.geovl.hcot import SUBTEXT_FIELDS, HCoTTask
from dataset_scripts.geovl.label_captions import FactCaptioner, ImageFacts, compose_subtexts
from dataset_scripts.geovl.pipeline import build_geovl_dataset
from dataset_scripts.geovl.vqa_sets import region_number


def test_boxes_of_real_aircraft_give_counts_and_grid_regions(sar_data_dir):
    root = sar_data_dir / "sar_aircraft_samples"
    coco = json.loads((root / "annotations_coco.json").read_text())
    image = coco["images"][0]
    names = {c["id"]: c["name"] for c in coco["categories"]}
    boxes = [(names[a["category_id"]], (a["bbox"][0], a["bbox"][1], a["bbox"][0] + a["bbox"][2],
                                        a["bbox"][1] + a["bbox"][3]), a["bbox"])
             for a in coco["annotations"] if a["image_id"] == image["id"]]
    gray = np.asarray(Image.open(root / image["file_name"]).convert("L"))
    fields = compose_subtexts(ImageFacts(gray=gray, targets=tuple((n, box) for n, box, _ in boxes),
                                         pixel_size_m=(1.0, 1.0)), HCoTTask.GROUND_TARGET)
    assert list(fields) == list(SUBTEXT_FIELDS)
    counts = Counter(n for n, _, _ in boxes)
    assert fields["target_quantity"] == ", ".join(f"{k} {n}" for n, k in sorted(counts.items())) + "."
    assert fields["target_category"] == f"The targets are: {', '.join(sorted(counts))}."
    region = region_number(next(xywh for n, _, xywh in boxes if n == "Boeing787"), *gray.shape[::-1])
    assert f"the Boeing787 in region {region}" in fields["spatial_layout"]
    assert "box spans 87 m x 94 m" in fields["target_attributes"]  # 87 x 94 px at 1 m
    assert fields["geographic_context"].startswith("The geographic location of the image is not recorded.")


def test_describe_cli_gives_a_labelled_build_its_hcot_fields(sar_data_dir, tmp_path):
    build_dataset("opensarship", sar_data_dir / "opensarship", tmp_path / "oss", max_items=4, seed=0)
    geovl_main(["describe", str(tmp_path / "oss"), "--out", str(tmp_path / "hcot"), "--task", "marine_target"])
    described = datasets.load_dataset(str(tmp_path / "hcot"))["train"]
    row = described[0]
    class_words = ["cargo ship", "law enforcement vessel", "ship of another type", "passenger ship",
                   "search and rescue vessel", "tanker", "tug"]  # label_class_words of the OpenSARShip classes
    assert row["target_category"] == f"The targets are: {class_words[row['label']]}."
    assert f"AIS length {row['ais_length_m']:.0f} m" in row["target_attributes"]
    assert row["text"] == " ".join(row[name] for name in SUBTEXT_FIELDS)
    assert row["regional_function"] == "The scene is waters used by shipping."


def test_pipeline_with_the_facts_backend_captions_the_example_geotiff(sar_data_dir, tmp_path):
    report = build_geovl_dataset([sar_data_dir / "sarclip_examples" / "example.tif"], tmp_path, FactCaptioner(),
                                 HCoTTask.TERRAIN, scale_sides_m=(1000.0, 500.0, 250.0))
    assert report.llm_requests == 0 and report.rows["large"] == 4 and not report.parse_failed
    rows = datasets.load_dataset(str(tmp_path))["train"]
    assert len(rows) == sum(report.rows.values())
    first = rows[0]
    assert f"latitude {first['center_lat']:.4f}, longitude {first['center_lon']:.4f}" in first["geographic_context"]
    assert "the image covers 1000 m x 1000 m" in first["geographic_context"]  # a large tile: 100 px at 10 m
