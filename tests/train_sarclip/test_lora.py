"""LoRA fine-tuning on real MSTAR chips: only adapter weights change, the training loss drops, adapters reload."""

import csv

import torch
from peft import PeftModel
from PIL import Image

from modeling_sarclip import SarclipImageProcessor, SarclipModel, SarclipProcessor, train_sarclip_tokenizer
from train.sarclip import TrainConfig, fit
from train.sarclip.data import caption_id
from train.sarclip.model_io import load_trained_model

CLASSES = ("2S1", "BMP2", "BRDM_2", "BTR60", "D7", "T62", "T72", "ZIL131")


def _mstar_caption_table(sar_data_dir, tmp_path):
    """A CSV of 16 real 17-degree train chips (2 per class) with one caption each."""
    rows = []
    for name in CLASSES:
        for chip in sorted((sar_data_dir / "mstar_soc" / "train" / name).glob("*.jpeg"))[:2]:
            rows.append({"filepath": str(chip), "title": f"an SAR image of a {name.replace('_', ' ')} vehicle"})
    path = tmp_path / "mstar.csv"
    with open(path, "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=["filepath", "title"])
        writer.writeheader()
        writer.writerows(rows)
    return path, [r["title"] for r in rows], [r["filepath"] for r in rows]


def test_lora_changes_only_adapters_and_lowers_loss(sar_data_dir, tmp_path, tiny_model_config):
    table, captions, files = _mstar_caption_table(sar_data_dir, tmp_path)
    tokenizer = train_sarclip_tokenizer(captions * 4, vocab_size=400)  # captions fit the 16-token context
    config = tiny_model_config("vit")
    config.text_config.vocab_size = len(tokenizer)
    config.text_config.bos_token_id, config.text_config.eos_token_id = tokenizer.bos_token_id, tokenizer.eos_token_id
    torch.manual_seed(0)
    base_dir = tmp_path / "base"
    SarclipModel(config).save_pretrained(base_dir)
    tokenizer.model_max_length = config.text_config.context_length
    SarclipProcessor(SarclipImageProcessor(size=32), tokenizer).save_pretrained(base_dir)

    # a briefly trained base (LoRA adapts a model that already means something; a random one sits at chance)
    base_dir = fit(TrainConfig(
        data=str(table), eval_split=None, model=str(base_dir), learning_rate=3e-4, batch_size=16, num_epochs=30,
        report_to="none", output_dir=str(tmp_path / "pretrain"), warmup_steps=0,
        allow_outside_data=True,  # the table names the shared chips where they are
    )).model_dir
    result = fit(TrainConfig(
        data=str(table), eval_split=None, model=str(base_dir), lora=True, lora_r=4, learning_rate=1e-3,
        batch_size=16, num_epochs=20, report_to="none", output_dir=str(tmp_path / "run"), warmup_steps=0,
        allow_outside_data=True,
    ))
    assert result.losses[-1] < result.losses[0]
    assert (result.model_dir / "adapter_config.json").is_file()
    assert not (result.model_dir / "model.safetensors").exists()  # adapters only

    base = SarclipModel.from_pretrained(base_dir)
    tuned = PeftModel.from_pretrained(SarclipModel.from_pretrained(base_dir), result.model_dir)
    base_state = base.state_dict()
    lora_changed = 0
    for name, value in tuned.state_dict().items():
        if "lora_" in name:
            lora_changed += int(not torch.all(value == 0)) if "lora_B" in name else 0
            continue
        base_name = name.removeprefix("base_model.model.").replace(".base_layer", "")
        assert torch.equal(value, base_state[base_name]), f"{name} changed"
    assert lora_changed > 0
    assert any(".qkv.lora_A" in n for n in tuned.state_dict()) and any(".fc2.lora_A" in n for n in tuned.state_dict())
    assert any("text_model" in n and "lora_A" in n for n in tuned.state_dict())

    merged, processor = load_trained_model(result.model_dir)
    batch = processor(images=[Image.open(f) for f in files], text=captions)
    batch = {"pixel_values": batch["pixel_values"], "input_ids": batch["input_ids"]}
    with torch.no_grad():
        expected = tuned.eval().get_image_features(pixel_values=batch["pixel_values"]).pooler_output
        merged_features = merged.eval().get_image_features(pixel_values=batch["pixel_values"]).pooler_output
        torch.testing.assert_close(merged_features, expected, atol=1e-5, rtol=1e-4)
        # the training loss on all 16 chips (2 per caption: the multi-positive loss), before and after the adapters
        batch["group_ids"] = torch.tensor([caption_id(c) for c in captions])
        assert merged(**batch, return_loss=True).loss < base(**batch, return_loss=True).loss


def test_lora_folder_keeps_peft_metadata_and_loads_with_auto_peft_model(tiny_train_config):
    import json

    import yaml
    from peft import AutoPeftModel

    base = fit(tiny_train_config(max_steps=1, output_dir=tiny_train_config().output_dir + "_base")).model_dir
    result = fit(tiny_train_config(max_steps=2, init_from=str(base), lora=True, eval_tasks=["zero_shot"]))
    card = yaml.safe_load((result.model_dir / "README.md").read_text().split("---")[1])
    assert card["library_name"] == "peft" and card["base_model"] == base.name and "lora" in card["tags"]
    assert json.loads((result.model_dir / "adapter_config.json").read_text())["base_model_name_or_path"] == str(base)
    # peft imports the base class named in the adapter config only from allow-listed packages
    model = AutoPeftModel.from_pretrained(result.model_dir, import_allowlist=["modeling_sarclip"])
    assert type(model.get_base_model()).__name__ == "SarclipModel"
    assert any("lora_A" in name for name, _ in model.named_parameters())


def test_lora_on_a_preset_saves_its_base_so_the_adapters_reload_offline(tiny_train_config):
    import json
    from pathlib import Path

    result = fit(tiny_train_config(max_steps=2, lora=True))
    base = json.loads((result.model_dir / "adapter_config.json").read_text())["base_model_name_or_path"]
    assert base == str(Path(tiny_train_config().output_dir) / "base_model") and (Path(base) / "config.json").is_file()
    merged, _ = load_trained_model(result.model_dir)  # no network: the base is a local folder
    assert type(merged).__name__ == "SarclipModel"
