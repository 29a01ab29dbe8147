"""A run stopped mid-epoch and resumed ends with exactly the weights of an uninterrupted run."""

import json

from safetensors.torch import load_file

from train.sarclip import fit
from train.common.checkpointing import list_checkpoints


def test_resume_gives_identical_weights(tiny_train_config, tmp_path):
    # 48 chips / batch 8 = 6 steps per epoch, 2 epochs; the interrupted run stops at step 4 (mid-epoch 0)
    common = dict(num_epochs=2, checkpoint_every=2, keep_checkpoints=1)
    uninterrupted = fit(tiny_train_config(output_dir=str(tmp_path / "full"), **common))
    fit(tiny_train_config(output_dir=str(tmp_path / "split"), max_steps=4, **common))
    checkpoints = list_checkpoints(tmp_path / "split" / "checkpoints")
    assert [c.name for c in checkpoints] == ["step_00000004"]  # older ones pruned, no temporary folder left
    assert not list((tmp_path / "split" / "checkpoints").glob(".tmp-*"))
    state = json.loads((checkpoints[0] / "trainer_state.json").read_text())
    assert state == {"global_step": 4, "epoch": 0, "batches_in_epoch": 4}
    resumed = fit(tiny_train_config(output_dir=str(tmp_path / "split"), resume="latest", **common))

    assert resumed.state.global_step == uninterrupted.state.global_step == 12
    assert resumed.losses == uninterrupted.losses
    full = load_file(uninterrupted.model_dir / "model.safetensors")
    split = load_file(resumed.model_dir / "model.safetensors")
    assert full.keys() == split.keys()
    assert all((full[k] == split[k]).all() for k in full)
    assert uninterrupted.losses[-1] < uninterrupted.losses[0]
