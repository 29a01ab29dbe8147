"""The `transformers.Trainer` recipe of train/README.md on the synthetic chips: it trains (the contrastive loss of a
fixed batch falls) and `save_model` writes a folder that reloads with the Auto classes."""

import datasets
import torch
from transformers import AutoModel, AutoProcessor, Trainer, TrainingArguments

from dataset_scripts import synthetic_dataset
from train.sarclip import fit


def test_trainer_recipe_trains_and_saves_a_loadable_folder(tiny_train_config, tmp_path):
    start = fit(tiny_train_config(max_steps=1, output_dir=str(tmp_path / "start"))).model_dir
    model = AutoModel.from_pretrained(start, trust_remote_code=True)
    processor = AutoProcessor.from_pretrained(start, trust_remote_code=True)
    train = synthetic_dataset(num_train=48, num_test=8, image_size=32, seed=0)["train"]
    pairs = datasets.Dataset.from_dict({"image": list(train["image"]), "caption": [c[0] for c in train["captions"]]})

    def collate(rows):  # the README's collator
        batch = processor(images=[r["image"] for r in rows], text=[r["caption"] for r in rows])
        return {"pixel_values": batch["pixel_values"], "input_ids": batch["input_ids"], "return_loss": True}

    fixed = collate([pairs[i] for i in range(16)])
    with torch.no_grad():
        before = model.eval()(**fixed).loss.item()
    args = TrainingArguments(str(tmp_path / "hf"), remove_unused_columns=False, per_device_train_batch_size=16,
                             learning_rate=1e-3, num_train_epochs=8, report_to=[], save_strategy="no",
                             use_cpu=True, seed=0)
    trainer = Trainer(model=model, args=args, train_dataset=pairs, data_collator=collate)
    trainer.train()
    trainer.save_model(tmp_path / "saved")
    reloaded = AutoModel.from_pretrained(tmp_path / "saved", trust_remote_code=True).eval()
    with torch.no_grad():
        after = reloaded(**fixed).loss.item()
    assert after < before - 0.1
    assert (tmp_path / "saved" / "pipeline_sarclip.py").is_file()
