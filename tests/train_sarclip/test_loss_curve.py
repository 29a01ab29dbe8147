"""`fit` writes `final/training_loss.png`, the per-step loss against its uniform value."""

import numpy as np

from train.sarclip import fit


def test_fit_writes_its_loss_curve_beside_the_model(tiny_train_config, tmp_path):
    from PIL import Image

    from train.common.loss_curve import save_loss_curve

    result = fit(tiny_train_config(num_epochs=2))
    curve = Image.open(result.model_dir / "training_loss.png")
    assert curve.size == (700, 400) and len(np.unique(np.asarray(curve.convert("L")))) > 10  # drawn, not blank
    assert not list(result.model_dir.glob(".tmp-*"))
    save_loss_curve([3.0, 2.0, 1.0], tmp_path / "curve.png", uniform=3.47)  # short runs: no running mean
    assert Image.open(tmp_path / "curve.png").size == (700, 400)
