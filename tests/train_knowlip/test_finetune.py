"""`python -m train.knowlip finetune --task ...` on real data (an OpenSARShip build, the VQA sets with MSTAR chips) with a
tiny SAR-KnowLIP: each task trains, saves a loadable model and writes its metrics."""

import json

import datasets
import pytest
import torch
from accelerate.utils import set_seed
from transformers import AutoModelForImageClassification

from dataset_scripts.export import build_dataset
from dataset_scripts.geovl.vqa_sets import load_vqa_sets, save_vqa_sets, target_regions
from modeling_knowlip import (SarKnowlipConfig, SarKnowlipForQuestionAnswering, SarKnowlipModel, SarKnowlipProcessor,
                              train_wordpiece_tokenizer)
from modeling_sarclip import SarclipImageProcessor
from train.common.run_log import read_run_log
from train.knowlip.__main__ import main
from train.knowlip.evaluate import evaluate_region_scorer, evaluate_vqa
from train.knowlip.finetune import FinetuneConfig


@pytest.fixture(scope="module")
def real_data(sar_data_dir, tmp_path_factory):
    root = tmp_path_factory.mktemp("finetune")
    build_dataset("opensarship", sar_data_dir / "opensarship", root / "oss", max_items=8, seed=0)
    save_vqa_sets(sar_data_dir, root / "vqa", mstar_per_class=1)
    return root


@pytest.fixture(scope="module")
def model_dir(real_data):
    """A tiny SAR-KnowLIP (random init) with a WordPiece trained on the captions and VQA texts."""
    vqa = datasets.load_dataset(str(real_data / "vqa"), split="train")
    corpus = [c for captions in datasets.load_dataset(str(real_data / "oss"), split="train")["captions"]
              for c in captions] + [f"{t}: {q} {a}" for t, q, a in zip(vqa["task_type"], vqa["question"], vqa["answer"])]
    tokenizer = train_wordpiece_tokenizer(corpus * 2, vocab_size=400)
    torch.manual_seed(0)
    model = SarKnowlipModel(SarKnowlipConfig.from_preset("tiny", tokenizer=tokenizer, queue_size=16))
    folder = real_data / "model"
    model.save_pretrained(folder)
    SarKnowlipProcessor(image_processor=SarclipImageProcessor(size=32), tokenizer=tokenizer).save_pretrained(folder)
    return folder


def _finetune(task, model_dir, data, out, *flags):
    assert main(["finetune", "--task", task, "--model", str(model_dir), "--data", str(data), "--output_dir", str(out),
                 "--epochs", "1", "--batch_size", "4", "--eval_batch_size", "8", *flags]) == 0
    return json.loads((out / "eval_results.json").read_text())


@pytest.mark.parametrize("lora", [False, True])
def test_classification_on_opensarship_ships(model_dir, real_data, tmp_path, lora, capsys):
    out = tmp_path / "run"
    results = _finetune("classification", model_dir, real_data / "oss", out, *(["--lora"] if lora else []))
    assert "classification epoch 1/1" in capsys.readouterr().err  # the progress bar
    assert results["test_examples"] == 8 and 0 <= results["finetune/top1"] <= results["finetune/top3"] <= 100
    model = AutoModelForImageClassification.from_pretrained(out / "model")
    assert model.config.num_labels == 7 and model.config.id2label[0] == "Cargo"
    assert not any("lora" in name for name in model.state_dict())  # LoRA: adapters merged into the ViT
    base = SarKnowlipModel.from_pretrained(model_dir).vision_model.layers[0].attention.q_proj.weight
    assert not torch.equal(model.vision_model.layers[0].attention.q_proj.weight, base)  # the ViT was trained
    # the epoch's record and the evaluation go to metrics.jsonl and to TensorBoard (report_to's default)
    epoch, evaluation = read_run_log(out)
    assert epoch["epoch"] == 1 and epoch["step"] == evaluation["step"] > 0 and epoch["loss"] > 0
    assert evaluation["eval/finetune/top1"] == results["finetune/top1"]
    assert list((out / "logs").rglob("events.out.tfevents.*"))


def test_a_finished_run_folder_is_refused_unless_overwritten(model_dir, real_data, tmp_path, capsys):
    out = tmp_path / "run"
    _finetune("classification", model_dir, real_data / "oss", out)
    weights = (out / "model" / "model.safetensors").read_bytes()
    argv = ["finetune", "--task", "classification", "--model", str(model_dir), "--data", str(real_data / "oss"),
            "--output_dir", str(out), "--epochs", "1", "--batch_size", "4", "--seed", "1"]
    assert main(argv) == 2
    assert f"error: {out}: holds a run (model/, checkpoints/); pass --resume" in capsys.readouterr().err
    assert (out / "model" / "model.safetensors").read_bytes() == weights  # untouched
    assert main([*argv, "--overwrite"]) == 0
    assert (out / "model" / "model.safetensors").read_bytes() != weights  # the seed-1 run replaced it
    assert json.loads((out / "eval_results.json").read_text())["config"]["seed"] == 1


def test_classification_on_a_folder_without_a_test_split_holds_out_as_sarclip_does(model_dir, sar_data_dir, tmp_path,
                                                                                    capsys):
    import shutil

    from train.sarclip.config import TrainConfig
    from train.sarclip.data import load_image_text_dataset

    chips = tmp_path / "chips"
    for name in ("2S1", "BMP2", "T72"):
        (chips / name).mkdir(parents=True)
        for path in sorted((sar_data_dir / "mstar_soc" / "train" / name).glob("*.jpeg"))[:5]:
            shutil.copy(path, chips / name / path.name)
    results = _finetune("classification", model_dir, chips, tmp_path / "run", "--seed", "2")
    assert "held out 3 of 15 'train' examples as 'test' (seed 2" in capsys.readouterr().out
    sarclip_test = load_image_text_dataset(TrainConfig(data=str(chips), seed=2))["test"]  # SARCLIP's rule, same seed
    assert results["test_examples"] == len(sarclip_test) == 3

    split = tmp_path / "split"  # a test split holding a copy of a train chip: warned about, as SARCLIP's fit does
    for part in ("train", "test"):
        shutil.copytree(chips, split / part)
    _finetune("classification", model_dir, split, tmp_path / "run_split")
    assert "15 of 15 'test' images are also in 'train'" in capsys.readouterr().out


@pytest.mark.parametrize("task, metric", [("retrieval", "mean_recall"), ("captioning", "cider")])
def test_retrieval_and_captioning_on_an_opensarship_build(model_dir, real_data, tmp_path, task, metric):
    results = _finetune(task, model_dir, real_data / "oss", tmp_path / "run")
    scores = results[task]["itm"] if task == "retrieval" else results[task]
    assert 0 <= scores[metric] <= 100 * (10 if task == "captioning" else 1)
    assert results["train_examples"] >= 8 and results["test_images"] == 8  # every caption of an image is a pair
    assert (tmp_path / "run" / "eval" / "eval_results.json").is_file()


def test_vqa_on_the_real_vqa_sets(model_dir, real_data, tmp_path):
    side = 2 * SarKnowlipConfig.from_pretrained(model_dir).vision_config.image_size
    results = _finetune("vqa", model_dir, real_data / "vqa", tmp_path / "run", "--max_train_samples", "12",
                        "--max_eval_samples", "12", "--image_size", str(side))
    assert sum(results["vqa"]["questions"].values()) == 12 == results["test_questions"]
    # the class-prior level beside it, per task type, on the same questions
    assert results["vqa_majority_answer"]["questions"] == results["vqa"]["questions"]
    # fine-tuned at twice the side: the saved model and processor both take the new size
    tuned = tmp_path / "run" / "model"
    assert SarKnowlipConfig.from_pretrained(tuned).vision_config.image_size == side
    assert SarKnowlipProcessor.from_pretrained(tuned).image_processor.size == side
    assert set(results["vqa"]["per_task"]) <= {"target count", "target recognition", "target position"}
    answers = (tmp_path / "run" / "eval" / "vqa_answers.jsonl").read_text().splitlines()
    assert len(answers) == 12
    # at Table 5's 35 tokens the region asked about survives truncation (the grid explanation comes after it)
    processor = SarKnowlipProcessor.from_pretrained(model_dir)
    question = next(q for q in datasets.load_dataset(str(real_data / "vqa"), split="train")["question"] if "region 5" in q)
    ids = processor.vqa_inputs([question], "target recognition", answers=["ship"], max_length=35)["input_ids"][0]
    assert "region 5" in processor.tokenizer.decode(ids)


def test_vqa_with_the_region_loss_labels_each_detection_image_by_its_boxes(model_dir, real_data, tmp_path):
    from train.knowlip.finetune import _vqa

    config = FinetuneConfig(task="vqa", model=str(model_dir), data=str(real_data / "vqa"), region_loss_weight=1.0)
    set_seed(config.seed)  # as `finetune` does: the scorer starts where the run's starts
    task = _vqa(config, SarKnowlipProcessor.from_pretrained(model_dir))
    assert task.model.config.vqa_region_weight == 1.0 and task.model.region_head is not None
    train = datasets.load_dataset(str(real_data / "vqa"), split="train")
    position = [i for i, t in enumerate(train["task_type"]) if t == "target position"][:3]
    chip = train["dataset"].index("mstar")
    labels = task.collate(position + [chip])["region_labels"]
    for row, index in zip(labels, position):  # one for each region its image's position answers name
        regions = {int(r) for r in train[index]["answer"].split(", ")}
        if train[index]["dataset"] == "hrsid":  # one class: its one position answer names every ship region
            assert row.tolist() == [float(r in regions) for r in range(1, 10)]
        assert all(row[r - 1] == 1 for r in regions)
    assert labels[-1].tolist() == [-1.0] * 9  # an MSTAR chip: no region labels
    results = _finetune("vqa", model_dir, real_data / "vqa", tmp_path / "run", "--max_train_samples", "12",
                        "--max_eval_samples", "4", "--region_loss_weight", "1",
                        "--weight_decay", "0")  # so only a gradient moves the scorer
    assert results["test_questions"] == 4 and results["vqa_region_scorer"]["images"] <= 4
    tuned = SarKnowlipForQuestionAnswering.from_pretrained(tmp_path / "run" / "model")
    assert tuned.config.vqa_region_weight == 1.0
    assert not torch.equal(tuned.region_head.weight, task.model.region_head.weight)  # the scorer trained
    with pytest.raises(ValueError, match="region_loss_weight applies to the vqa task only"):
        FinetuneConfig(task="captioning", model=str(model_dir), data="x", region_loss_weight=1.0)


@pytest.mark.parametrize("bias", [10.0, -10.0])
def test_the_region_scorer_is_scored_against_each_image_regions(model_dir, real_data, bias):
    model = SarKnowlipForQuestionAnswering.from_pretrained(model_dir, vqa_region_weight=1.0).eval()
    with torch.no_grad():  # a scorer that says "target" (or "none") for every region of every image
        model.region_head.weight.zero_()
        model.region_head.bias.fill_(bias)
    test = load_vqa_sets(real_data / "vqa")["test"]
    by_image = target_regions(test["task_type"], test["answer"], test["image_id"])
    scores = evaluate_region_scorer(model, SarKnowlipProcessor.from_pretrained(model_dir), test, by_image, batch_size=4)
    regions = list(by_image.values())
    held = sum(len(r) for r in regions)
    assert scores["images"] == len(regions) == 9
    if bias > 0:
        assert scores["region_f1"] == pytest.approx(200 * held / (9 * len(regions) + held))
        assert scores["exact"] == pytest.approx(100 * sum(len(r) == 9 for r in regions) / len(regions))
    else:
        assert scores["region_f1"] == 0 and scores["exact"] == pytest.approx(100 * sum(not r for r in regions) / 9)


def test_a_grounded_model_answers_position_questions_from_its_scorer(model_dir, real_data):
    model = SarKnowlipForQuestionAnswering.from_pretrained(model_dir, vqa_region_weight=1.0).eval()
    with torch.no_grad():  # every region "holds a target": each position answer is "1, 2, ..., 9"
        model.region_head.weight.zero_()
        model.region_head.bias.fill_(10.0)
    processor = SarKnowlipProcessor.from_pretrained(model_dir)
    test = load_vqa_sets(real_data / "vqa")["test"]
    test = test.select([i for i, t in enumerate(test["task_type"]) if t != "target recognition"][:6])
    results, answers = evaluate_vqa(model, processor, test, batch_size=4)
    plain, plain_answers = evaluate_vqa(SarKnowlipForQuestionAnswering.from_pretrained(model_dir), processor, test,
                                        batch_size=4)
    position = [t == "target position" for t in test["task_type"]]
    assert any(position) and not all(position)
    everywhere = ", ".join(str(r) for r in range(1, 10))
    assert [a == everywhere for a in answers] == position  # the scorer answers position questions, only them
    assert [a for a, p in zip(answers, position) if not p] == [a for a, p in zip(plain_answers, position) if not p]
    assert results["position_answers"] == "region scorer" and plain["position_answers"] == "answer decoder"
    assert results["per_task"]["target position"] == pytest.approx(
        100 * sum(a == everywhere for a, p in zip(test["answer"], position) if p) / sum(position))


def test_bad_finetune_configs_are_named(model_dir, tmp_path):
    with pytest.raises(ValueError, match="task: 'detection' is not one of"):
        FinetuneConfig(task="detection", model=str(model_dir), data="x")
    with pytest.raises(ValueError, match="lora applies to the classification task only"):
        FinetuneConfig(task="vqa", model=str(model_dir), data="x", lora=True)
    with pytest.raises(ValueError, match="model must be a SAR-KnowLIP folder with its processor"):
        FinetuneConfig(model=str(tmp_path), data="x")
    (tmp_path / "processor_config.json").write_text("{}")
    (tmp_path / "config.json").write_text('{"model_type": "sarclip"}')  # a SARCLIP run's final/
    with pytest.raises(ValueError, match=f"model: {tmp_path} holds a sarclip model, not SAR-KnowLIP"):
        FinetuneConfig(model=str(tmp_path), data="x")
    assert FinetuneConfig(task="captioning", model=str(model_dir), data="x").max_length == 100  # Table 5


def test_two_accumulated_batches_of_two_train_as_one_batch_of_four(model_dir, real_data, tmp_path):
    """`--gradient_accumulation_steps`: the gradients of that many batches make one optimizer step (a classifier's
    mean loss over 2 + 2 examples is its mean over 4), with the schedule counting optimizer steps."""
    weights = {}
    for name, batch, accumulation in (("whole", "4", "1"), ("accumulated", "2", "2")):
        out = tmp_path / name
        assert main(["finetune", "--task", "classification", "--model", str(model_dir), "--data", str(real_data / "oss"),
                     "--output_dir", str(out), "--epochs", "2", "--batch_size", batch, "--gradient_accumulation_steps",
                     accumulation, "--max_train_samples", "8", "--eval_batch_size", "8"]) == 0
        weights[name] = AutoModelForImageClassification.from_pretrained(out / "model").state_dict()
        assert [record["steps"] for record in read_run_log(out) if "epoch" in record] == [2, 2]
    # attention key biases aside: softmax ignores them, so their gradient is rounding noise that Adam scales up
    assert all(torch.allclose(weights["whole"][key], weights["accumulated"][key], atol=1e-6)
               for key in weights["whole"] if not key.endswith("k_proj.bias"))
    base = SarKnowlipModel.from_pretrained(model_dir).vision_model.layers[0].attention.q_proj.weight
    assert not torch.allclose(weights["whole"]["vision_model.layers.0.attention.q_proj.weight"], base)  # it trained
