"""The collapse guard in SAR-KnowLIP's trainers: SCIO and `finetune` runs made to blow up on purpose (an absurd
learning rate) stop with `training collapsed at step N (...)`, before any NaN reaches a saved model."""

import re

import pytest
import torch
from accelerate import Accelerator
from safetensors.torch import load_file

from dataset_scripts import synthetic_dataset
from dataset_scripts.export import write_dataset_folder
from modeling_knowlip import SarKnowlipConfig, SarKnowlipModel, SarKnowlipProcessor, train_wordpiece_tokenizer
from modeling_sarclip import SarclipImageProcessor
from train.common.collapse_guard import TrainingCollapsedError
from train.knowlip import ScioConfig, ScioTrainer
from train.knowlip.__main__ import main
from train.knowlip.finetune import FinetuneConfig, finetune
from train.knowlip.run_config import ScioRunConfig

MESSAGE = re.compile(r"^training collapsed at step \d+ \((ITC|cross-entropy) loss = \S+ vs ln B = \d+\.\d+, feature "
                     r"cosine \S+; B = \d+ (contrastive candidates|classes); .+\); best checkpoint: .+; try a lower "
                     r"learning_rate")


def test_scio_at_an_absurd_learning_rate_stops_before_saving_a_model(tiny_model, processor, scio_dataset, tmp_path):
    config = ScioConfig(output_dir=str(tmp_path), stage_epochs=(2, 1, 1), batch_size=3, learning_rate=1e3,
                        warmup_steps=2, max_length=96, max_fragment_tokens=6, pass_batch_size=4, seed=0,
                        collapse_patience=4)
    with pytest.raises(TrainingCollapsedError) as caught:
        ScioTrainer(tiny_model(), processor, scio_dataset, config, Accelerator(cpu=True)).run()
    message = str(caught.value)
    assert MESSAGE.match(message), message
    assert "ITC loss" in message and "B = 19 contrastive candidates" in message  # batch 3 + queue 16
    assert not (tmp_path / "model").exists()  # no final model
    checkpoints = list((tmp_path / "checkpoints").glob("step_*/model.safetensors"))
    assert checkpoints and all(torch.isfinite(weight).all() for checkpoint in checkpoints  # the NaN never got in
                               for weight in load_file(checkpoint).values())


def test_scio_collapse_settings_are_validated():
    with pytest.raises(ValueError, match="collapse_patience: must be >= 0, got -1"):
        ScioRunConfig(collapse_patience=-1)
    with pytest.raises(ValueError, match="collapse_cosine: must be > 0 and <= 1, got 1.5"):
        ScioRunConfig(collapse_cosine=1.5)
    assert ScioRunConfig(collapse_patience="0").collapse_patience == 0  # YAML strings become numbers


@pytest.fixture(scope="module")
def finetune_setup(tmp_path_factory):
    """A tiny labelled, captioned SAR set (synthetic, 32 px) as a dataset folder and a tiny SAR-KnowLIP on it."""
    root = tmp_path_factory.mktemp("finetune_guard")
    data = synthetic_dataset(num_train=24, num_test=8, image_size=32, seed=0)
    write_dataset_folder(root / "data", {split: [data[split]] for split in data}, card="# tiny synthetic SAR set\n")
    captions = [c for captions in data["train"]["captions"] for c in captions]
    tokenizer = train_wordpiece_tokenizer(captions * 2, vocab_size=200)
    torch.manual_seed(0)
    model = SarKnowlipModel(SarKnowlipConfig.from_preset("tiny", tokenizer=tokenizer, queue_size=16))
    model.save_pretrained(root / "model")
    SarKnowlipProcessor(image_processor=SarclipImageProcessor(size=32), tokenizer=tokenizer).save_pretrained(
        root / "model")
    return root


@pytest.mark.parametrize("task", ["classification", "retrieval"])
def test_finetune_at_an_absurd_learning_rate_stops_with_the_error(finetune_setup, tmp_path, task):
    config = FinetuneConfig(task=task, model=str(finetune_setup / "model"), data=str(finetune_setup / "data"),
                            output_dir=str(tmp_path / "run"), epochs=3, batch_size=8, learning_rate=1e3,
                            warmup_ratio=0.0, max_train_samples=16, collapse_patience=3)
    with pytest.raises(TrainingCollapsedError) as caught:
        finetune(config, Accelerator(cpu=True))
    message = str(caught.value)
    assert MESSAGE.match(message), message
    expected = "B = 5 classes" if task == "classification" else "contrastive candidates"
    # it stops within 3 steps: at most the end of the first epoch (step 2) was checkpointed before the collapse
    best = re.search(r"best checkpoint: (none|[^;]+step_\d+)", message)
    assert expected in message and best and best[1] in ("none", str(tmp_path / "run" / "checkpoints" / "step_00000002"))
    assert not (tmp_path / "run" / "model").exists()


def test_finetune_collapse_through_the_cli_is_an_error_line(finetune_setup, tmp_path, capsys):
    assert main(["finetune", "--task", "classification", "--model", str(finetune_setup / "model"),
                 "--data", str(finetune_setup / "data"), "--output_dir", str(tmp_path / "run"), "--epochs", "2",
                 "--batch_size", "8", "--learning_rate", "1e3", "--warmup_ratio", "0", "--max_train_samples", "16",
                 "--collapse_patience", "3"]) == 2
    err = capsys.readouterr().err
    assert err.splitlines()[-1].startswith("error: training collapsed at step ") and "Traceback" not in err
