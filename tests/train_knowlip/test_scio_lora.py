"""LoRA for SCIO: momentum encoders track the effective (merged) online weights; a LoRA run trains only adapters."""

import json
from pathlib import Path

import torch
from peft import PeftModel
from safetensors.torch import load_file

from modeling_knowlip import SarKnowlipModel
from modeling_knowlip.losses_knowlip import momentum_update
from train.common.lora import add_lora
from train.knowlip import ScioRunConfig, fit_scio
from train.knowlip.fit import ONLINE_TOWERS

TINY = Path(__file__).resolve().parents[2] / "train" / "knowlip" / "configs" / "tiny_synthetic.yaml"


def test_momentum_update_tracks_the_merged_lora_weights(tiny_model):
    config = ScioRunConfig()
    model = add_lora(tiny_model(), config.lora_target_modules, towers=ONLINE_TOWERS)
    inner = model.get_base_model()
    assert not any("lora_" in name for name, _ in inner.vision_model_m.named_parameters())  # no adapters there
    assert all("lora_" in n for n, p in model.named_parameters() if p.requires_grad)
    for name, param in model.named_parameters():
        if "lora_B" in name:
            torch.nn.init.normal_(param, std=0.5)  # a non-zero adapter, as after training
    momentum_update(inner.text_encoder, inner.text_encoder_m, 0.5)
    before = {n: p.clone() for n, p in inner.text_encoder_m.named_parameters()}
    momentum_update(inner.text_encoder, inner.text_encoder_m, 0.0)  # momentum 0: a copy of the effective weights
    merged = model.merge_and_unload()
    for name, param in merged.text_encoder.named_parameters():
        torch.testing.assert_close(merged.text_encoder_m.get_parameter(name), param, msg=name)
    query = "encoder.layer.0.attention.self.query.weight"
    assert not torch.allclose(before[query], merged.text_encoder.get_parameter(query))  # the EMA moved halfway


def _changed(a: torch.Tensor, b: torch.Tensor) -> bool:
    return not torch.equal(a, b)


def test_lora_scio_trains_only_adapters_and_saves_them(tmp_path):
    out = tmp_path / "lora"
    config = ScioRunConfig.from_cli(str(TINY), ["--output_dir", str(out), "--lora", "--stage_epochs", "[4, 0, 0]",
                                                "--synthetic_num_images", "8", "--learning_rate", "5e-3",
                                                "--lora_r", "4"])
    result = fit_scio(config)
    log = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    losses = [r["loss"] for r in log if r["kind"] == "train"]
    assert len(losses) == 4 and all(torch.isfinite(torch.tensor(losses)))
    assert losses[-1] < losses[0]

    base = SarKnowlipModel.from_pretrained(result.base_model_dir).state_dict()
    checkpoint = max((out / "checkpoints").iterdir())  # the whole state, momentum encoders and queue included
    trained = {k.removeprefix("base_model.model.").replace(".base_layer", ""): v
               for k, v in load_file(checkpoint / "model.safetensors").items()}
    adapters = [k for k in trained if "lora_" in k]
    assert any(k.startswith("vision_model.") for k in adapters) and any(k.startswith("text_decoder.") for k in adapters)
    assert any(_changed(trained[k], torch.zeros_like(trained[k])) for k in adapters if "lora_B" in k)
    weights = [k for k in trained if "lora_" not in k]
    assert set(weights) <= set(base)
    momentum = [k for k in weights if k.split(".")[0].endswith("_m")]
    online = [k for k in weights if k not in momentum and not k.startswith("queue.")]
    assert momentum and online and all(torch.equal(trained[k], base[k]) for k in online)  # frozen base
    assert any(_changed(trained[k], base[k]) for k in momentum)  # EMA of W + B A moved away from W
    assert _changed(trained["queue.image_feats"], base["queue.image_feats"])

    assert (result.model_dir / "adapter_config.json").is_file()
    loaded = PeftModel.from_pretrained(SarKnowlipModel.from_pretrained(result.base_model_dir), result.model_dir)
    state = {k.removeprefix("base_model.model.").replace(".default", ""): v for k, v in loaded.state_dict().items()}
    for key in adapters:
        torch.testing.assert_close(state[key.replace(".default", "")], trained[key], msg=key)
