"""The one CLI layer (`sar_utils.command_line.run_cli`): input errors of libraries and the machine are one `error:`
line and exit 2, an interrupt says what is intact, a bug keeps its traceback."""

import errno

import pytest
import yaml

from sar_utils.command_line import run_cli
from train.sarclip.__main__ import main as sarclip_main


def _raising(err):
    def main(argv):
        raise err
    return main


def test_library_input_errors_are_one_line(tmp_path, capsys):
    from safetensors import SafetensorError
    from safetensors.torch import load_file

    damaged = tmp_path / "model.safetensors"
    damaged.write_bytes(b"not a safetensors file")
    with pytest.raises(SafetensorError) as caught:
        load_file(damaged)
    assert run_cli(_raising(caught.value), []) == 2
    with pytest.raises(yaml.YAMLError) as caught:
        yaml.safe_load("a: [1, 2")
    assert run_cli(_raising(caught.value), []) == 2
    assert run_cli(_raising(OSError(errno.EROFS, "Read-only file system", "/data/out")), []) == 2
    err = capsys.readouterr().err
    assert err.count("error: ") == 3 and "Read-only file system: '/data/out'" in err and "Traceback" not in err


def test_an_interrupt_says_what_is_intact_and_a_bug_keeps_its_traceback(capsys):
    assert run_cli(_raising(KeyboardInterrupt()), []) == 130
    assert "last complete checkpoint or output is intact" in capsys.readouterr().err
    with pytest.raises(RuntimeError):
        run_cli(_raising(RuntimeError("a bug")), [])
    with pytest.raises(KeyboardInterrupt):
        run_cli(_raising(KeyboardInterrupt()), ["--debug"])


def test_a_malformed_yaml_config_is_an_error_line(tmp_path, capsys):
    config = tmp_path / "bad.yaml"
    config.write_text("learning_rate: [1e-3\nbatch_size: 8\n")
    assert sarclip_main(["fit", "--config", str(config)]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"error: {config}: not a readable YAML config") and "Traceback" not in err


def test_a_folder_that_is_not_a_model_is_named(tmp_path, capsys):
    assert sarclip_main(["eval", str(tmp_path), "--data", "synthetic"]) == 2
    assert capsys.readouterr().err.startswith(f"error: {tmp_path}: not a model folder (no config.json")
    (tmp_path / "config.json").write_text('{"model_type": "sarclip"}')  # weights and processor missing
    assert sarclip_main(["eval", str(tmp_path), "--data", "synthetic"]) == 2  # transformers' own missing-file error
    err = capsys.readouterr().err
    assert err.startswith("error: Can't load") and str(tmp_path) in err and "Traceback" not in err


def test_vqa_data_without_questions_names_the_folder(tmp_path, sar_data_dir):
    from train.knowlip.evaluate import load_vqa_data

    chips = tmp_path / "chips" / "train" / "BMP2"
    chips.mkdir(parents=True)
    (chips / "a.jpeg").write_bytes(next((sar_data_dir / "mstar_soc" / "train" / "BMP2").glob("*.jpeg")).read_bytes())
    with pytest.raises(ValueError, match=f"{tmp_path / 'chips'}: VQA data lacks the columns .*dataset_scripts.geovl vqa"):
        load_vqa_data(tmp_path / "chips", "train")


def test_the_built_in_synthetic_set_outside_training_says_how_to_build_it():
    from dataset_scripts.loading import load_image_text_data

    with pytest.raises(ValueError, match="python -m dataset_scripts build synthetic --out DIR, then give --data DIR"):
        load_image_text_data("synthetic")
