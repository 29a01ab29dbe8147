"""The collapse guard (train/common/collapse_guard.py): its measures and rules on real tensors, and SARCLIP runs made
to collapse on purpose (an absurd learning rate: NaN; a high one: every feature on one point, loss at ln B), which
stop with `training collapsed at step N (...)` and keep their best checkpoint, while a healthy run is not stopped."""

import math
import re
import subprocess
import sys

import pytest
import torch
import torch.nn.functional as F
from safetensors.torch import load_file

from modeling_knowlip.losses_knowlip import itc_targets, soft_contrastive_loss
from modeling_sarclip.loss_sarclip import contrastive_loss
from train.common.checkpointing import list_checkpoints
from train.common.collapse_guard import (
    CollapseGuard,
    TrainingCollapsedError,
    feature_spread,
    probe_indices,
    uniform_loss,
)
from train.sarclip.trainer import fit

MESSAGE = re.compile(r"^training collapsed at step (\d+) \(loss = \S+ vs ln B = (\d+\.\d+), feature cosine \S+; "
                     r"B = (\d+) contrastive candidates; .+\); best checkpoint: (.+?); try a lower learning_rate")
QUICKSTART_MODEL = {"embed_dim": 64, "vision_cfg": {"image_size": 64, "patch_size": 8, "layers": 3, "width": 128},
                    "text_cfg": {"context_length": 32, "width": 128, "heads": 4, "layers": 3}}


# ----- measures -----

def test_feature_spread_is_the_mean_off_diagonal_cosine():
    features = torch.randn(9, 5, generator=torch.Generator().manual_seed(0))
    unit = F.normalize(features, dim=1)
    gram = unit @ unit.t()
    assert feature_spread(features) == pytest.approx(float((gram.sum() - gram.trace()) / (9 * 8)), abs=1e-6)
    assert feature_spread(torch.ones(4, 3) * torch.tensor([[1.0], [2.0], [3.0], [0.5]])) == pytest.approx(1.0)
    assert feature_spread(torch.eye(6)) == pytest.approx(0.0)
    assert feature_spread(torch.tensor([[1.0, 0.0], [-1.0, 0.0]])) == pytest.approx(-1.0)
    assert math.isnan(feature_spread(torch.tensor([[1.0, float("nan")], [1.0, 0.0]])))
    assert math.isnan(feature_spread(torch.ones(1, 3)))


@pytest.mark.parametrize("batch", [1, 8, 32])
def test_uniform_loss_is_the_loss_of_collapsed_features(batch):
    """Every input on one point: the contrastive loss is exactly ln B, with one positive per row (InfoNCE), with
    multi-positive groups, and for SAR-KnowLIP's ITC with soft (distilled) targets over batch + queue."""
    assert uniform_loss(batch) == pytest.approx(math.log(batch))
    same = F.normalize(torch.ones(batch, 16), dim=1)
    scale = torch.tensor(100.0)
    assert float(contrastive_loss(same, same, scale)) == pytest.approx(uniform_loss(batch), abs=1e-5)
    groups = torch.arange(batch) % 3
    assert float(contrastive_loss(same, same, scale, groups)) == pytest.approx(uniform_loss(batch), abs=1e-5)
    queue = 16
    logits = torch.zeros(batch, batch + queue)
    targets = itc_targets(torch.eye(batch, batch + queue, dtype=torch.bool), torch.randn(batch, batch + queue), 0.4)
    assert float(soft_contrastive_loss(logits, targets)) == pytest.approx(uniform_loss(batch + queue), abs=1e-5)
    with pytest.raises(ValueError):
        uniform_loss(0)


def test_probe_indices_spread_over_the_data():
    assert probe_indices(10) == list(range(10))
    chosen = probe_indices(1000, 64)
    assert len(chosen) == 64 and chosen[0] == 0 and chosen[-1] == 999 and chosen == sorted(set(chosen))


# ----- the rules -----

def _guard(**kwargs):
    warnings = []
    return CollapseGuard(warn=warnings.append, **kwargs), warnings


def test_nan_loss_or_gradient_stops_at_once():
    guard, _ = _guard(patience=100)
    guard.observe(1, torch.tensor(2.0), uniform_loss(8), grad_norm=torch.tensor(1.0))
    with pytest.raises(TrainingCollapsedError, match=r"^training collapsed at step 2 \(loss = nan vs ln B = 2\.0794"):
        guard.observe(2, torch.tensor(float("nan")), uniform_loss(8))
    with pytest.raises(TrainingCollapsedError, match="the gradient norm is inf"):
        guard.observe(3, 2.0, uniform_loss(8), grad_norm=torch.tensor(float("inf")))
    with pytest.raises(TrainingCollapsedError, match="the summed loss is nan"):
        guard.observe(4, 2.0, uniform_loss(8), other_losses={"summed loss": float("nan")})
    off, _ = _guard(patience=0)  # patience 0 switches the plateau stop off, never the non-finite one
    with pytest.raises(TrainingCollapsedError):
        off.observe(1, float("inf"), uniform_loss(8))
    assert isinstance(TrainingCollapsedError("x", 1, None, "y"), ValueError)  # the CLI layer's user error


def test_the_condition_warns_once_then_stops_after_patience_and_keeps_the_best_checkpoint(tmp_path):
    guard, warnings = _guard(patience=20, grace_steps=10)
    ln8 = uniform_loss(8)
    # warm-up: the loss at ln B does not count (but those checkpoints are not "best" either)
    guard.observe(5, ln8, ln8)
    assert guard.check(5, 0.2, 0.3) == {"loss_over_uniform": pytest.approx(1.0), "image_cosine": 0.2,
                                         "text_cosine": 0.3}
    assert not guard.suspect and not warnings and not guard.healthy
    # healthy: the loss well below ln B
    guard.observe(10, 0.5 * ln8, ln8)
    guard.check(10, 0.2, 0.3)
    assert guard.healthy and guard.protect is None
    guard.checkpoint_saved(tmp_path / "step_00000010")
    # collapse from step 20: features on one point, loss at ln B
    for step in range(20, 40, 10):
        guard.observe(step, ln8 * 1.001, ln8)
        guard.check(step, 0.99999, 0.5)
        guard.checkpoint_saved(tmp_path / f"step_{step:08d}")
    assert guard.suspect and guard.episode_start == 20 and len(warnings) == 1
    assert warnings[0].startswith("warning: collapse guard: at step 20 the loss sits at its uniform value ln B and "
                                  "the image features collapsed")
    assert guard.protect == tmp_path / "step_00000010"  # pruning must keep it
    guard.observe(40, ln8, ln8)
    with pytest.raises(TrainingCollapsedError) as caught:
        guard.check(40, 0.99999, 0.5)
    match = MESSAGE.match(str(caught.value))
    assert match, str(caught.value)
    assert match[1] == "40" and match[2] == "2.0794" and match[3] == "8"
    assert match[4] == str(tmp_path / "step_00000010") and caught.value.best_checkpoint == tmp_path / "step_00000010"
    assert "feature cosine 0.99999" in str(caught.value) and "for 20 steps" in str(caught.value)
    assert "standardize: per_image" in str(caught.value) and len(warnings) == 1


def test_a_recovered_run_is_not_stopped_and_patience_zero_only_logs():
    guard, warnings = _guard(patience=20, cosine=0.99)
    ln8 = uniform_loss(8)
    for step, cosine in ((10, 0.995), (20, 0.995), (30, 0.5), (40, 0.995), (50, 0.995), (60, 0.5)):
        guard.observe(step, 0.5 * ln8, ln8)
        guard.check(step, cosine)
    assert not guard.suspect and [w.split(" at step ")[1][:2] for w in warnings] == ["10", "30", "40", "60"]
    off, warnings = _guard(patience=0)
    for step in range(1, 500, 10):
        off.observe(step, ln8, ln8)
        assert off.check(step, 1.0)["image_cosine"] == 1.0
    assert not warnings and not off.watching
    with pytest.raises(TrainingCollapsedError, match="the features are not finite"):
        _guard()[0].check(1, float("nan"))


def test_collapse_settings_are_validated(tiny_train_config):
    with pytest.raises(ValueError, match="collapse_patience: must be >= 0, got -1"):
        tiny_train_config(collapse_patience=-1)
    for cosine in (0, 1.5):
        with pytest.raises(ValueError, match=f"collapse_cosine: must be > 0 and <= 1, got {cosine}"):
            tiny_train_config(collapse_cosine=cosine)
    assert tiny_train_config(collapse_cosine="0.99").collapse_cosine == 0.99


# ----- SARCLIP runs made to collapse -----

def _collapsing_run(tiny_train_config, learning_rate):
    """The first step has learning rate 0 (warm-up from 0): its checkpoint is healthy; then an absurd rate."""
    return tiny_train_config(learning_rate=learning_rate, num_epochs=3, warmup_steps=3, checkpoint_every=1,
                             keep_checkpoints=1, collapse_patience=4, eval_tasks=["retrieval"])


@pytest.mark.parametrize("learning_rate, reason", [
    (1e3, r"not finite|gradient norm"),  # NaN within a few steps
    (1.0, r"the loss sits at its uniform value ln B and the image features collapsed \(mean pairwise cosine 1"),
])
def test_a_collapsing_sarclip_run_stops_and_keeps_its_best_checkpoint(tiny_train_config, learning_rate, reason):
    config = _collapsing_run(tiny_train_config, learning_rate)
    with pytest.raises(TrainingCollapsedError) as caught:
        fit(config)
    message = str(caught.value)
    match = MESSAGE.match(message)
    assert match, message
    assert re.search(reason, message), message
    assert match[2] == "2.0794" and match[3] == "8"  # ln 8, batch 8
    best = config.output_dir + "/checkpoints/step_00000001"
    assert match[4] == best and caught.value.best_checkpoint.is_dir()
    # keep_checkpoints 1 pruned everything but the newest ... and the protected best one
    assert [c.name for c in list_checkpoints(config.output_dir + "/checkpoints")][0] == "step_00000001"
    run = caught.value.best_checkpoint.parents[1]
    assert not (run / "final").exists()  # no model saved, nothing evaluated
    for checkpoint in list_checkpoints(run / "checkpoints"):  # the step that went non-finite was never applied
        assert all(torch.isfinite(w).all() for w in load_file(checkpoint / "model.safetensors").values())
    if learning_rate == 1.0:
        assert 5 <= caught.value.step <= 9 and "for 4 steps" in message


def test_a_collapsing_run_through_the_cli_is_an_error_line_and_exit_2(tmp_path, synthetic_tokenizer_dir):
    overrides = ("{embed_dim: 16, vision_cfg: {image_size: 32, patch_size: 8, layers: 2, width: 32, head_width: 16}, "
                 "text_cfg: {context_length: 24, width: 32, heads: 2, layers: 2}}")
    run = subprocess.run(
        [sys.executable, "-m", "train", "fit", "--data", "synthetic", "--synthetic_num_train", "48",
         "--synthetic_num_test", "16", "--synthetic_image_size", "32", "--model_overrides", overrides,
         "--tokenizer", str(synthetic_tokenizer_dir), "--learning_rate", "1.0", "--batch_size", "8",
         "--num_epochs", "3", "--warmup_steps", "0", "--report_to", "none", "--log_every", "1",
         "--collapse_patience", "3", "--output_dir", str(tmp_path / "run")],
        capture_output=True, text=True, timeout=300, env={**__import__("os").environ, "OMP_NUM_THREADS": "1"})
    assert run.returncode == 2, run.stderr[-3000:]
    last = run.stderr.strip().splitlines()[-1]
    assert last.startswith("error: training collapsed at step ") and "best checkpoint: " in last, last
    assert "Traceback" not in run.stderr
    assert "warning: collapse guard: at step 1 " in run.stdout  # warned before stopping
    assert not (tmp_path / "run" / "final").exists()


def test_a_healthy_run_is_not_stopped(tiny_train_config, tmp_path):
    """A quickstart-like run (its model and warm-up, smaller data): the loss leaves ln B and the features spread
    after a short collapse-like phase at the end of the warm-up, so a patience of 10 steps never fires."""
    config = tiny_train_config(synthetic_num_train=320, synthetic_image_size=64, model_overrides=QUICKSTART_MODEL,
                               batch_size=32, num_epochs=2, warmup_steps=10, multi_positive="label",
                               augment=["translate"], weight_decay=0.1, collapse_patience=10,
                               report_to="tensorboard")
    result = fit(config)
    assert (result.model_dir / "model.safetensors").is_file() and result.state.global_step == 20
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    events = EventAccumulator(str(next((tmp_path / "run" / "logs").rglob("events.out.tfevents.*")))).Reload()
    assert {"train/image_cosine", "train/text_cosine", "train/loss_over_uniform"} <= set(events.Tags()["scalars"])
    image_cosine = [event.value for event in events.Scalars("train/image_cosine")]
    assert len(image_cosine) == 20 and image_cosine[-1] < 0.99
    assert events.Scalars("train/loss_over_uniform")[-1].value < 0.99


def test_observe_unclipped_measures_the_gradient_except_under_fp16():
    from train.common.collapse_guard import CHECK_EVERY, CollapseGuard, TrainingCollapsedError

    model = torch.nn.Linear(2, 1)
    model(torch.ones(1, 2)).sum().backward()
    model.weight.grad[0, 0] = float("nan")
    with pytest.raises(TrainingCollapsedError, match="the gradient norm is nan"):
        CollapseGuard(patience=0).observe_unclipped(1, 1.0, 32, model, "no")
    guard = CollapseGuard(patience=0)
    guard.observe_unclipped(1, 1.0, 32, model, "fp16")  # the fp16 loss scaler skips such a step itself
    assert guard.uniform == pytest.approx(math.log(32))
    assert CollapseGuard.check_due(CHECK_EVERY) and not CollapseGuard.check_due(CHECK_EVERY + 1)
    assert CollapseGuard.check_due(CHECK_EVERY + 1, end_of_epoch=True)
    assert not CollapseGuard.check_due(CHECK_EVERY, end_of_epoch=True)
