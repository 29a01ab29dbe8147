"""`standardize: auto` (the LoRA recipe): fine-tuning keeps the base's own radiometry or maps each chip to it
(per_image), whichever gives the starting model the better linear probe on a validation split of the train chips."""

import json
import re

import numpy as np
import pytest
from PIL import Image

from train.sarclip import fit


def _brightness_classes(c, rng):
    """The class is the chip's brightness: per-chip standardisation removes exactly that."""
    return np.clip(rng.normal(60 + 100 * c, 4, (32, 32)), 0, 255)


def _brighter_half_classes(c, rng):
    """The class is which half is brighter, on a large random offset per chip: standardisation removes the
    nuisance."""
    chip = np.full((32, 32), rng.uniform(0, 230))
    chip[:, :16] += rng.uniform(2, 20) if c else 0
    chip[:, 16:] += 0 if c else rng.uniform(2, 20)
    return np.clip(chip + rng.normal(0, 1, chip.shape), 0, 255)


def _chip_folder(root, make, per_class=32):
    rng = np.random.default_rng(0)
    for split, count in (("train", per_class), ("test", 4)):
        for c, name in enumerate(("dim", "bright")):
            (root / split / name).mkdir(parents=True)
            for i in range(count):
                Image.fromarray(make(c, rng).astype(np.uint8)).save(root / split / name / f"{i}.png")
    return root


@pytest.mark.parametrize("make, chosen, per_image", [
    (_brightness_classes, "none", False),
    (_brighter_half_classes, "per_image", True),
])
def test_auto_keeps_or_maps_the_radiometry_by_the_starting_models_probe(make, chosen, per_image, tiny_train_config,
                                                                         tmp_path, capsys):
    base = fit(tiny_train_config(num_epochs=3, output_dir=str(tmp_path / "base"))).model_dir
    chips = _chip_folder(tmp_path / "chips", make)
    capsys.readouterr()

    def run(standardize, name):
        return fit(tiny_train_config(data=str(chips), init_from=str(base), lora=True, standardize=standardize,
                                     max_steps=3, output_dir=str(tmp_path / name)))

    auto = run("auto", "auto")
    printed = capsys.readouterr().out
    found = re.search(r"standardize: auto chose (\w+) .*: ([\d.]+) % with its own setting \(none\), ([\d.]+) % "
                      r"per_image", printed)
    assert found and found[1] == chosen and (float(found[3]) > float(found[2])) == per_image
    # measuring leaves the run as it is with the chosen setting given explicitly (same LoRA init, same losses)
    assert auto.losses == run(chosen, "explicit").losses
    saved = json.loads((auto.model_dir / "processor_config.json").read_text())["image_processor"]
    assert saved["per_image_standardize"] is per_image
    if per_image:  # mapped to the base's training inputs, as `standardize: per_image` would
        reference = json.loads((base / "processor_config.json").read_text())["image_processor"]["pixel_reference"]
        assert saved["per_image_target"] == pytest.approx(reference)


def test_auto_keeps_the_setting_without_labels_and_is_refused_where_it_cannot_measure(tiny_train_config, capsys):
    from train.knowlip.run_config import ScioRunConfig
    from train.sarclip.data import load_image_text_dataset
    from train.sarclip.model_io import load_trained_model
    from train.sarclip.model_setup import auto_standardization

    config = tiny_train_config(max_steps=1)
    model, processor = load_trained_model(fit(config).model_dir)
    captions_only = load_image_text_dataset(config)["train"].remove_columns("label")
    assert auto_standardization(model, processor, captions_only, "base") is None
    assert "standardize: auto keeps base's setting (none): it needs labelled training chips" in capsys.readouterr().out
    tiny_train_config(standardize="auto").check()  # SARCLIP fine-tuning measures it
    with pytest.raises(ValueError, match="standardize must be one of"):  # SAR-KnowLIP does not
        ScioRunConfig(standardize="auto")
