"""A user's labelled chips through the README commands: fit (LoRA) -> eval -> adapter reload, for an image folder in
both layouts and a label CSV, on real MSTAR chips."""

import csv
import json
import shutil

import pytest
import torch
from peft import PeftModel

from modeling_sarclip import SarclipModel
from train.sarclip import fit
from train.sarclip.__main__ import main

CLASSES = ("2S1", "BMP2", "T72")


def _chips(sar_data_dir, per_class=6):
    return {name: sorted((sar_data_dir / "mstar_soc" / "train" / name).glob("*.jpeg"))[:per_class]
            for name in CLASSES}


def _layout(kind, sar_data_dir, root):
    chips = _chips(sar_data_dir)
    root.mkdir()
    if kind == "csv":
        rows = [{"image": str(path), "label": name} for name, paths in chips.items() for path in paths]
        with open(root / "labels.csv", "w", newline="") as f:
            writer = csv.DictWriter(f, fieldnames=["image", "label"])
            writer.writeheader()
            writer.writerows(rows)
        return root / "labels.csv"
    for name, paths in chips.items():
        for i, path in enumerate(paths):
            split = ("test" if i < 2 else "train") if kind == "split" else ""
            (root / split / name).mkdir(parents=True, exist_ok=True)
            shutil.copy(path, root / split / name / path.name)
    return root


@pytest.mark.parametrize("kind", ["flat", "split", "csv"])
def test_fit_eval_and_reload_on_a_users_chips(kind, sar_data_dir, tmp_path, tiny_train_config, capsys):
    base = fit(tiny_train_config(max_steps=1, output_dir=str(tmp_path / "base"))).model_dir
    data = _layout(kind, sar_data_dir, tmp_path / "chips")
    run = tmp_path / "lora"
    args = ["fit", "--data", str(data), "--init_from", str(base), "--lora", "--num_epochs", "2", "--batch_size", "4",
            "--eval_tasks", "[zero_shot, linear_probe]", "--report_to", "none", "--output_dir", str(run)]
    if kind == "csv":  # the table names chips in another folder (absolute paths): only with the explicit opt-in
        capsys.readouterr()
        assert main(args) == 2 and not run.exists()
        assert "row 2: image '/" in capsys.readouterr().err
        args.append("--allow_outside_data")
    assert main(args) == 0
    printed = capsys.readouterr().out
    if kind != "split":
        assert "held out" in printed  # the seeded, stratified split is reported
    metrics = json.loads((run / "final" / "eval_results.json").read_text())
    assert 0 <= metrics["zero_shot/top1"] <= 100 and 0 <= metrics["linear_probe/accuracy"] <= 100

    assert main(["eval", str(run / "final"), "--data", str(data), "--tasks", "zero_shot,linear_probe",
                 "--out", str(tmp_path / "eval")]) == 0  # a csv's opt-in comes from the run's train_config.yaml
    again = json.loads((tmp_path / "eval" / "eval_results.json").read_text())
    assert again["zero_shot/top1"] == pytest.approx(metrics["zero_shot/top1"])  # the same held-out split

    tuned = PeftModel.from_pretrained(SarclipModel.from_pretrained(base), run / "final")
    assert any("lora_B" in name and not torch.all(p == 0) for name, p in tuned.named_parameters())


def test_eval_holds_out_exactly_the_chips_the_run_held_out(sar_data_dir, tmp_path, tiny_train_config, capsys):
    """A run with --seed 3 holds out other chips than seed 0 would; `eval` reads the run's seed (and class words)
    from final/train_config.yaml, so its "held-out" chips are never training chips; the class words name the
    zero-shot prompts of the run's own evaluation and of `eval`."""
    from train.sarclip.data import eval_data_config
    from train.sarclip.data import load_image_text_dataset
    from train.sarclip.config import TrainConfig

    base = fit(tiny_train_config(max_steps=1, output_dir=str(tmp_path / "base"))).model_dir
    data = _layout("flat", sar_data_dir, tmp_path / "chips")
    run = tmp_path / "run"
    words = tmp_path / "words.yaml"
    words.write_text("2S1: self-propelled howitzer\n")
    assert main(["fit", "--data", str(data), "--init_from", str(base), "--seed", "3", "--max_steps", "1",
                 "--batch_size", "4", "--eval_tasks", "[zero_shot]", "--report_to", "none", "--class_words",
                 str(words), "--output_dir", str(run)]) == 0
    capsys.readouterr()
    assert "zero_shot/class_accuracy/self-propelled howitzer" in json.loads(
        (run / "final" / "eval_results.json").read_text())
    assert main(["eval", str(run / "final"), "--data", str(data), "--tasks", "zero_shot",
                 "--out", str(tmp_path / "eval")]) == 0
    assert "zero_shot/class_accuracy/self-propelled howitzer" in json.loads(
        (tmp_path / "eval" / "eval_results.json").read_text())
    other = tmp_path / "other_words.yaml"  # eval's --class-words overrides the run's
    other.write_text("2S1: tracked artillery\n")
    assert main(["eval", str(run / "final"), "--data", str(data), "--tasks", "zero_shot", "--class-words", str(other),
                 "--out", str(tmp_path / "eval_other")]) == 0
    metrics = json.loads((tmp_path / "eval_other" / "eval_results.json").read_text())
    assert "zero_shot/class_accuracy/tracked artillery" in metrics
    assert "zero_shot/class_accuracy/self-propelled howitzer" not in metrics

    def held_out(config):
        return sorted(load_image_text_dataset(config)["test"]["image"])

    run_split = held_out(TrainConfig(data=str(data), seed=3))
    assert run_split != held_out(TrainConfig(data=str(data), seed=0))  # the bug this guards against is visible
    assert held_out(eval_data_config(run / "final", str(data), None)) == run_split
    assert "seed 3" in capsys.readouterr().out
    assert held_out(eval_data_config(run / "final", str(data), 0)) != run_split  # --seed overrides
    assert eval_data_config(run / "final", "synthetic", None).seed == 0  # other data: the defaults


def test_the_same_image_in_train_and_test_is_warned_about(sar_data_dir, tmp_path, capsys):
    from train.sarclip.config import TrainConfig
    from train.sarclip.data import load_image_text_dataset

    data = _layout("split", sar_data_dir, tmp_path / "chips")
    load_image_text_dataset(TrainConfig(data=str(data)))
    assert "warning" not in capsys.readouterr().out
    leaked = sorted((data / "train" / "T72").glob("*.jpeg"))[0]
    shutil.copy(leaked, data / "test" / "T72" / "copy_of_a_train_chip.jpeg")  # another name, the same bytes
    load_image_text_dataset(TrainConfig(data=str(data)))
    assert "warning: " in (out := capsys.readouterr().out) and "1 of 7 'test' images are also in 'train'" in out
