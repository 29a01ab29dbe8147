"""Numerical parity with the real open_clip package on random-init models, and the conversion CLI."""

import json

import open_clip
import pytest
import torch
from safetensors.torch import save_file

from modeling_sarclip import SarclipConfig, SarclipModel, SarclipProcessor
from modeling_sarclip.convert_open_clip_to_sarclip import convert_checkpoint, main

TEXTS = ["an SAR image of urban zones", "a SAR image of a ship at sea", "farmland", "a tank", "bare soil", "harbour"]

# ViT-L-14's layout (patch 14, 24 vision layers, 12 text layers) at a reduced width, to keep CPU time small.
VIT_L_14_NARROW = {
    "embed_dim": 128,
    "vision_cfg": {"image_size": 224, "layers": 24, "width": 128, "patch_size": 14},
    "text_cfg": {"context_length": 77, "vocab_size": 49408, "width": 128, "heads": 2, "layers": 12},
}


def _randomised_open_clip(model_cfg: dict | str) -> torch.nn.Module:
    """An open_clip CLIP whose every weight (norms, biases, BN statistics included) is non-trivial."""
    torch.manual_seed(0)
    if isinstance(model_cfg, str):
        model = open_clip.create_model(model_cfg)
    else:
        model = open_clip.CLIP(model_cfg["embed_dim"], model_cfg["vision_cfg"], model_cfg["text_cfg"])
    with torch.no_grad():
        for name, tensor in model.state_dict().items():
            if tensor.dtype.is_floating_point and name != "logit_scale":
                tensor.add_(torch.randn_like(tensor) * 0.02)
            if name.endswith("running_var"):
                tensor.abs_().add_(0.5)
    return model.eval()


@pytest.mark.parametrize("arch", ["ViT-B-32", "RN50", "ViT-L-14-narrow"])
def test_parity_with_open_clip(tmp_path, arch):
    model_cfg = VIT_L_14_NARROW if arch == "ViT-L-14-narrow" else arch
    reference = _randomised_open_clip(model_cfg)
    checkpoint = tmp_path / "open_clip.pt"
    # the layout open_clip's training script writes: DDP-wrapped state dict next to the epoch counter
    torch.save({"epoch": 10, "state_dict": {f"module.{k}": v for k, v in reference.state_dict().items()}}, checkpoint)
    config = (
        SarclipConfig.from_open_clip_config(VIT_L_14_NARROW) if arch == "ViT-L-14-narrow" else SarclipConfig.from_preset(arch)
    )
    model = convert_checkpoint(checkpoint, config)

    pixels = torch.randn(3, 3, 224, 224, generator=torch.Generator().manual_seed(1))
    ids = open_clip.tokenize(TEXTS)
    with torch.no_grad():
        ref_image, ref_text = reference.encode_image(pixels), reference.encode_text(ids)
        out = model(input_ids=ids, pixel_values=pixels)
        image = model.get_image_features(pixels).pooler_output
        text = model.get_text_features(ids).pooler_output
        ref_logits = reference.logit_scale.exp() * torch.nn.functional.normalize(ref_image, dim=-1) @ (
            torch.nn.functional.normalize(ref_text, dim=-1).t()
        )
    assert (image - ref_image).abs().max() <= 1e-4
    assert (text - ref_text).abs().max() <= 1e-4
    torch.testing.assert_close(out.logits_per_image, ref_logits, atol=1e-3, rtol=1e-4)
    assert torch.equal(out.logits_per_image.argsort(dim=-1), ref_logits.argsort(dim=-1))


def test_cli_writes_hub_ready_folder_from_safetensors_and_pushes(tmp_path, bpe_path, offline_hub):
    config = {
        "embed_dim": 32,
        "vision_cfg": {"image_size": 64, "layers": 2, "width": 64, "patch_size": 16},
        "text_cfg": {"context_length": 77, "vocab_size": 49408, "width": 64, "heads": 2, "layers": 2},
    }
    reference = _randomised_open_clip(config)
    (tmp_path / "cfg.json").write_text(json.dumps(config))
    save_file({k: v.contiguous() for k, v in reference.state_dict().items()}, tmp_path / "ckpt.safetensors")
    out = tmp_path / "converted"
    main(
        [
            "--checkpoint", str(tmp_path / "ckpt.safetensors"),
            "--open_clip_config", str(tmp_path / "cfg.json"),
            "--output_dir", str(out),
            "--bpe", str(bpe_path),
            "--push_to_hub", "sar-org/sarclip-tiny",
        ]
    )  # fmt: skip
    for name in ["config.json", "model.safetensors", "modeling_sarclip.py", "configuration_sarclip.py",
                 "processor_config.json", "tokenizer.json", "image_processing_sarclip.py", "README.md"]:  # fmt: skip
        assert (out / name).is_file(), name
    card = (out / "README.md").read_text()
    assert "pipeline_tag: zero-shot-image-classification" in card and "cfg" in card

    model = SarclipModel.from_pretrained(out).eval()
    processor = SarclipProcessor.from_pretrained(out)
    inputs = processor(images=torch.zeros(64, 64).numpy().astype("uint8"), text=TEXTS[:2], padding="max_length")
    torch.testing.assert_close(inputs["input_ids"], open_clip.tokenize(TEXTS[:2]))  # open_clip pads to 77
    with torch.no_grad():
        expected = reference.encode_text(inputs["input_ids"])
        torch.testing.assert_close(model.get_text_features(inputs["input_ids"]).pooler_output, expected, atol=1e-4, rtol=0)

    pushed = offline_hub.snapshot("sar-org/sarclip-tiny")
    assert sorted(p.name for p in pushed.iterdir()) == sorted(p.name for p in out.iterdir())
    assert (pushed / "model.safetensors").read_bytes() == (out / "model.safetensors").read_bytes()

    # a used folder (e.g. a trained model with its results) is refused, and the checkpoint's own folder always is
    args = ["--checkpoint", str(tmp_path / "ckpt.safetensors"), "--open_clip_config", str(tmp_path / "cfg.json"),
            "--bpe", str(bpe_path)]
    (out / "eval_results.json").write_text("{}")
    before = {path.name: path.read_bytes() for path in out.iterdir()}
    assert main([*args, "--output_dir", str(out)]) == 2
    assert main([*args, "--output_dir", str(tmp_path), "--overwrite"]) == 2
    assert {path.name: path.read_bytes() for path in out.iterdir()} == before and (tmp_path / "ckpt.safetensors").exists()
    assert main([*args, "--output_dir", str(out), "--overwrite"]) == 0
    assert not (out / "eval_results.json").exists() and (out / "model.safetensors").is_file()


def test_wrong_architecture_and_bad_files_fail_clearly(tmp_path):
    torch.save(_randomised_open_clip(VIT_L_14_NARROW).state_dict(), tmp_path / "vit.bin")
    with pytest.raises(ValueError, match="checkpoint keys not understood for a resnet SARCLIP model"):
        convert_checkpoint(tmp_path / "vit.bin", SarclipConfig.from_preset("RN50"))
    with pytest.raises(ValueError, match=r"vit\.bin: does not match .* shape mismatches"):
        convert_checkpoint(tmp_path / "vit.bin", SarclipConfig.from_preset("ViT-B-32"))
    (tmp_path / "junk.pt").write_bytes(b"not a checkpoint")
    with pytest.raises(ValueError, match=r"junk\.pt: cannot load checkpoint"):
        convert_checkpoint(tmp_path / "junk.pt", SarclipConfig.from_preset("ViT-B-32"))
    with pytest.raises(FileNotFoundError, match="nothing.pt"):
        convert_checkpoint(tmp_path / "nothing.pt", SarclipConfig.from_preset("ViT-B-32"))


def test_cli_user_error_is_one_line_with_exit_code_2(tmp_path):
    import subprocess
    import sys

    run = subprocess.run([sys.executable, "-m", "modeling_sarclip.convert_open_clip_to_sarclip", "--checkpoint",
                          str(tmp_path / "missing.pt"), "--model", "ViT-B-32", "--output_dir", str(tmp_path / "out")],
                         capture_output=True, text=True, timeout=120)
    assert run.returncode == 2 and "Traceback" not in run.stderr
    assert run.stderr.strip() == f"error: {tmp_path / 'missing.pt'}: checkpoint not found"
    assert not (tmp_path / "out").exists()
