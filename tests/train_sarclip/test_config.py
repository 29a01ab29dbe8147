"""TrainConfig: YAML + CLI overrides, paper defaults, chained stage configs."""

from pathlib import Path

import pytest

from train.sarclip.config import TrainConfig

CONFIGS = Path(__file__).resolve().parents[2] / "train" / "sarclip" / "configs"


def test_yaml_with_cli_overrides(tmp_path):
    path = tmp_path / "run.yaml"
    path.write_text("data: synthetic\nbatch_size: 16\nmodel_overrides: {embed_dim: 32}\n")
    config = TrainConfig.from_cli(str(path), ["--batch_size", "4", "--lora", "--lora_target_modules", "[qkv]",
                                              "--output_dir", "123", "--learning_rate", "1e-4", "--resume"])
    assert (config.batch_size, config.lora, config.lora_target_modules) == (4, True, ["qkv"])
    assert config.model_overrides == {"embed_dim": 32}
    assert config.output_dir == "123" and config.learning_rate == 1e-4  # str fields stay strings
    assert config.resume == "latest"
    cleared = TrainConfig.from_cli(None, ["--eval_split", "null", "--class_words", "~", "--train_split", "null"])
    assert cleared.eval_split is None and cleared.class_words is None  # optional strings take YAML's null
    assert cleared.train_split == "null"  # a required string stays the string


def test_paper_learning_rates_per_tower():
    assert TrainConfig().learning_rate_for(is_resnet=True) == 5e-4
    assert TrainConfig().learning_rate_for(is_resnet=False) == 5e-5
    assert TrainConfig(learning_rate=1e-3).learning_rate_for(is_resnet=True) == 1e-3
    assert TrainConfig().max_grad_norm == 1.0
    assert TrainConfig(lora=True).learning_rate_for(is_resnet=False) == 2e-3  # the LoRA recipe's rate


def test_min_steps_adds_epochs_on_small_data_only(tiny_train_config):
    from train.sarclip import fit
    from train.sarclip.trainer import epochs_for

    assert epochs_for(TrainConfig(num_epochs=30, min_steps=420), steps_per_epoch=7) == 60  # 250 chips, batch 32
    assert epochs_for(TrainConfig(num_epochs=30, min_steps=420), steps_per_epoch=85) == 30  # 2,746 chips
    assert epochs_for(TrainConfig(num_epochs=3), steps_per_epoch=1) == 3
    recipe = TrainConfig(num_epochs=30, min_steps=840, prompt_loss_min_steps=420)  # the LoRA recipe's two counts
    assert epochs_for(recipe, steps_per_epoch=7) == 120 and epochs_for(recipe, steps_per_epoch=7, prompt_loss=True) == 60
    assert epochs_for(TrainConfig(num_epochs=30, min_steps=840), steps_per_epoch=7, prompt_loss=True) == 120
    result = fit(tiny_train_config(num_epochs=1, min_steps=10))  # 48 chips, batch 8: 6 steps per epoch
    assert result.state.global_step == 12 and result.state.epoch == 2
    with pytest.raises(ValueError, match="min_steps: must be >= 1, got 0"):
        TrainConfig(min_steps=0)


@pytest.mark.parametrize("flags, message", [
    (["--no_such_field", "1"], "unknown option --no_such_field"),
    (["--batch_size"], "needs a value"),
    (["batch_size", "3"], "expected a --field flag"),
])
def test_bad_flags_are_named(flags, message):
    with pytest.raises(ValueError, match=message):
        TrainConfig.parse_overrides(flags)


def test_unknown_yaml_key_names_the_file(tmp_path):
    path = tmp_path / "bad.yaml"
    path.write_text("batchsize: 3\n")
    with pytest.raises(ValueError, match=r"bad.yaml: unknown config keys \['batchsize'\]"):
        TrainConfig.from_yaml(path)


def test_stage_configs_chain():
    stage1 = TrainConfig.from_yaml(CONFIGS / "stage1_optical.yaml")
    stage2 = TrainConfig.from_yaml(CONFIGS / "stage2_sar.yaml")
    assert stage2.init_from == str(Path(stage1.output_dir) / "final")
    for name in ("quickstart.yaml", "mstar_soc.yaml"):
        TrainConfig.from_yaml(CONFIGS / name)
