"""The one run-config base (train/common/config.py) and the one command-line layer (dataset_scripts/command_line.py):
declared bounds and choices checked before any work, list flags, and both flag spellings in every CLI."""

import pytest

from dataset_scripts.__main__ import main as data_main
from modeling_sarclip.convert_open_clip_to_sarclip import main as convert_main
from train.knowlip.__main__ import main as knowlip_main
from train.knowlip.finetune import FinetuneConfig
from train.knowlip.run_config import ScioRunConfig
from train.sarclip.__main__ import main as sarclip_main
from train.sarclip.config import TrainConfig


@pytest.mark.parametrize("main, flags, message", [
    (knowlip_main, ["--batch_size", "0"], "error: batch_size: must be >= 1, got 0"),
    (knowlip_main, ["--learning_rate", "-1"], "error: learning_rate: must be > 0, got -1"),
    (knowlip_main, ["--max-fragment-tokens", "-3"], "error: max_fragment_tokens: must be >= 1, got -3"),
    (knowlip_main, ["--positive_groups", "class"], "error: positive_groups: 'class' is not one of"),
    (knowlip_main, ["--stage_epochs", "1,-1,1"], "error: stage_epochs: must be >= 0, got -1"),
    (sarclip_main, ["--eval_tasks", "zero_shot,recall"], "error: eval_tasks: 'recall' is not one of"),
    (sarclip_main, ["--warmup_ratio", "1.5"], "error: warmup_ratio: must be >= 0 and < 1, got 1.5"),
    (sarclip_main, ["--batch_size", "2.5"], "error: batch_size: must be a whole number, got 2.5"),
])
def test_bad_configs_stop_before_any_work(main, flags, message, tmp_path, capsys):
    out = tmp_path / "run"
    assert main(["fit", "--output_dir", str(out), *flags]) == 2
    assert capsys.readouterr().err.startswith(message)
    assert not out.exists()  # nothing was written, nothing trained


def test_finetune_bounds_are_declared_too():
    with pytest.raises(ValueError, match="epochs: must be >= 1, got 0"):
        FinetuneConfig(epochs=0)
    with pytest.raises(ValueError, match="retrieval_k: must be >= 1, got 0"):
        FinetuneConfig(retrieval_k=0)


@pytest.mark.parametrize("flags", [
    ["--eval_tasks", "zero_shot,linear_probe"],
    ["--eval-tasks", "zero_shot", "--eval_tasks", "linear_probe"],
    ["--eval_tasks", "[zero_shot, linear_probe]"],
])
def test_list_flags_in_every_form(flags):
    assert TrainConfig.from_cli(None, flags).eval_tasks == ["zero_shot", "linear_probe"]


def test_a_single_list_item_is_not_split_into_characters():
    assert TrainConfig.from_cli(None, ["--eval_tasks", "zero_shot"]).eval_tasks == ["zero_shot"]
    assert ScioRunConfig.from_cli(None, ["--stage-epochs", "10,4,4"]).stage_epochs == (10, 4, 4)


def test_argparse_commands_take_both_spellings(tmp_path, capsys):
    # the data CLI's own options
    for flag in ("--max-items", "--max_items"):
        assert data_main(["build", "synthetic", "--out", str(tmp_path / flag), flag, "0"]) == 2
        assert capsys.readouterr().err == "error: max_items (--max-items) must be at least 1, got 0\n"
    # the converter's options, also as --flag=value
    for flags in (["--output-dir", str(tmp_path / "a")], [f"--output_dir={tmp_path / 'b'}"]):
        assert convert_main(["--checkpoint", str(tmp_path / "none.pt"), "--model", "RN50", *flags]) == 2
        assert "none.pt: checkpoint not found" in capsys.readouterr().err


def test_quickstart_help_lists_every_field_with_the_quickstart_values(capsys):
    with pytest.raises(SystemExit):
        sarclip_main(["quickstart", "--help"])
    text = capsys.readouterr().out
    from train.sarclip.__main__ import QUICKSTART

    quickstart = TrainConfig.from_yaml(QUICKSTART)
    for name in TrainConfig.field_names():
        assert f"  --{name} (default: {getattr(quickstart, name)!r})" in text, name
