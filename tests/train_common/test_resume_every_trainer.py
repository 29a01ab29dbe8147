"""Exact resume, the same test for the three training kinds (SARCLIP fit, SCIO, SAR-KnowLIP finetune): a run killed
right after its first checkpoint and resumed ends with the same weights, bit for bit, as the uninterrupted run, and
with the same metrics log (`metrics.jsonl`, wall-clock rates aside)."""

from pathlib import Path

import pytest
import torch
from PIL import Image
from safetensors.torch import load_file

from modeling_knowlip import SarKnowlipConfig, SarKnowlipModel, SarKnowlipProcessor, train_wordpiece_tokenizer
from modeling_sarclip import SarclipImageProcessor
from train.common.run_log import read_run_log
from train.knowlip.__main__ import main as knowlip_main
from train.sarclip import fit
from train.sarclip.config import TrainConfig

ROOT = Path(__file__).resolve().parents[2]
TINY_VIT = {"embed_dim": 16, "vision_cfg": {"image_size": 32, "patch_size": 8, "layers": 2, "width": 32,
                                            "head_width": 16},
            "text_cfg": {"context_length": 24, "width": 32, "heads": 2, "layers": 2}}


class Killed(Exception):
    """Stands for the process dying right after a checkpoint was written."""


def _sarclip(out: Path, resume: bool, _) -> Path:
    fit(TrainConfig(data="synthetic", synthetic_num_train=48, synthetic_num_test=16, synthetic_image_size=32,
                    model="ViT-B-32", model_overrides=TINY_VIT, tokenizer="trained", tokenizer_vocab_size=300,
                    learning_rate=1e-3, batch_size=8, num_epochs=2, eval_tasks=[], report_to="none",
                    output_dir=str(out), resume="latest" if resume else None))
    return out / "final"


def _scio(out: Path, resume: bool, inputs: Path) -> Path:  # SCIO resumes from its output folder by itself
    assert knowlip_main(["fit", "--config", str(ROOT / "train" / "knowlip" / "configs" / "tiny_synthetic.yaml"),
                         "--output_dir", str(out), "--synthetic_num_images", "8", "--tokenizer", str(inputs / "model")
                         ]) == 0
    return out / "model"


def _finetune(out: Path, resume: bool, inputs: Path) -> Path:
    assert knowlip_main(["finetune", "--task", "classification", "--model", str(inputs / "model"), "--data",
                         str(inputs / "chips"), "--output_dir", str(out), "--epochs", "3", "--batch_size", "4",
                         *(["--resume"] if resume else [])]) == 0
    return out / "model"


@pytest.fixture
def finetune_inputs(sar_data_dir, tmp_path):
    """A tiny random SAR-KnowLIP and an image folder of MSTAR chips (2 classes, 6 train + 2 test each)."""
    for split, count in (("train", 6), ("test", 2)):
        for name in ("BMP2", "T72"):
            folder = tmp_path / "chips" / split / name
            folder.mkdir(parents=True)
            for path in sorted((sar_data_dir / "mstar_soc" / "train" / name).iterdir())[:count]:
                Image.open(path).save(folder / f"{path.stem}.png")
    tokenizer = train_wordpiece_tokenizer(["a SAR image of a BMP2 tank", "a SAR image of a T72 tank"] * 4,
                                          vocab_size=100)
    torch.manual_seed(0)
    SarKnowlipModel(SarKnowlipConfig.from_preset("tiny", tokenizer=tokenizer, queue_size=16)).save_pretrained(
        tmp_path / "model")
    SarKnowlipProcessor(image_processor=SarclipImageProcessor(size=32), tokenizer=tokenizer).save_pretrained(
        tmp_path / "model")
    return tmp_path


@pytest.mark.parametrize("run", [_sarclip, _scio, _finetune], ids=["sarclip", "scio", "finetune"])
def test_killed_and_resumed_equals_uninterrupted(run, tmp_path, monkeypatch, request):
    # one tokenizer for both runs (the `tokenizers` trainers break ties in hash order: two trainings can differ)
    inputs = request.getfixturevalue("finetune_inputs") if run is not _sarclip else None
    whole = load_file(run(tmp_path / "whole", False, inputs) / "model.safetensors")

    import train.common.loop as trainer  # the one training step of every trainer saves their checkpoints

    save = trainer.save_checkpoint

    def save_then_die(*args, **kwargs):
        save(*args, **kwargs)
        raise Killed

    monkeypatch.setattr(trainer, "save_checkpoint", save_then_die)
    with pytest.raises(Killed):
        run(tmp_path / "resumed", False, inputs)
    assert not (tmp_path / "resumed" / ("final" if run is _sarclip else "model")).exists()
    monkeypatch.setattr(trainer, "save_checkpoint", save)
    resumed = load_file(run(tmp_path / "resumed", True, inputs) / "model.safetensors")

    assert whole.keys() == resumed.keys()
    assert all(torch.equal(whole[name], resumed[name]) for name in whole)

    def curve(folder: Path) -> list[dict]:
        return [{key: value for key, value in record.items() if "second" not in key}  # wall-clock values aside
                for record in read_run_log(folder)]

    assert curve(tmp_path / "whole") and curve(tmp_path / "resumed") == curve(tmp_path / "whole")
