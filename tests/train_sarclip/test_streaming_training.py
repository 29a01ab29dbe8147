"""`fit` with `streaming: true`: trains from parquet shards, resumes exactly, evaluates, refuses what it cannot do;
and the collator's epoch reaches persistent DataLoader workers."""

import shutil

import pytest
import torch
from safetensors.torch import load_file
from torch.utils.data import DataLoader

from dataset_scripts.builders.synthetic import write_synthetic_corpus
from train.sarclip import fit


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    """48 chips (240 pairs) in 4 train shards, plus one shard copied as the test split."""
    out = write_synthetic_corpus(tmp_path_factory.mktemp("corpus") / "synthetic", num_pairs=240, image_size=32,
                                 num_shards=4)
    shutil.copy(out / "data" / "train-00000-of-00004.parquet", out / "data" / "test-00000-of-00001.parquet")
    return out


def _weights(result):
    return load_file(result.model_dir / "model.safetensors")


def test_streamed_run_resumes_to_exactly_the_weights_of_an_uninterrupted_one(tiny_train_config, corpus, tmp_path):
    # 48 chips / batch 8 = 6 steps per epoch, 2 epochs; the interrupted run stops mid-epoch 1
    common = dict(data=str(corpus), streaming=True, shuffle_buffer=16, num_epochs=2, checkpoint_every=2,
                  keep_checkpoints=1)
    full = fit(tiny_train_config(output_dir=str(tmp_path / "full"), **common))
    fit(tiny_train_config(output_dir=str(tmp_path / "split"), max_steps=8, **common))
    resumed = fit(tiny_train_config(output_dir=str(tmp_path / "split"), resume="latest", **common))
    assert full.state.global_step == resumed.state.global_step == 12
    assert resumed.losses == full.losses
    a, b = _weights(full), _weights(resumed)
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    assert full.losses[-1] < full.losses[0]

    with_workers = fit(tiny_train_config(output_dir=str(tmp_path / "workers"), num_workers=2, **common))
    assert with_workers.losses == full.losses  # the batch order does not depend on the number of workers


def test_streamed_run_groups_repeated_captions_and_evaluates_the_test_shards(tiny_train_config, corpus, capsys):
    result = fit(tiny_train_config(data=str(corpus), streaming=True, shuffle_buffer=16,
                                   eval_tasks=["retrieval", "zero_shot"]))
    assert "multi-positive by caption" in capsys.readouterr().out  # auto: a stream cannot be scanned for repeats
    assert 0 <= result.metrics["zero_shot/top1"] <= 100 and "retrieval/mean_recall" in result.metrics


@pytest.mark.parametrize("fields, message", [
    (dict(tokenizer="trained"), "tokenizer: trained reads every caption"),
    (dict(max_train_samples=10), "with streaming: true use max_steps"),
])
def test_streaming_settings_it_cannot_honour_are_errors(tiny_train_config, corpus, fields, message):
    with pytest.raises(ValueError, match=message):
        tiny_train_config(data=str(corpus), streaming=True, **fields)


def test_streaming_a_folder_without_shards_or_a_split_names_what_is_missing(tiny_train_config, corpus, tmp_path):
    with pytest.raises(FileNotFoundError, match=r"no parquet shards data/train-\*\.parquet"):
        fit(tiny_train_config(data=str(tmp_path), streaming=True))
    with pytest.raises(FileNotFoundError, match=r"no parquet shards data/validation-\*\.parquet"):
        fit(tiny_train_config(data=str(corpus), streaming=True, eval_split="validation", eval_tasks=["retrieval"]))
    assert not (tmp_path / "run" / "checkpoints").exists()  # refused before training


def test_a_missing_shard_is_named_not_silently_skipped(tiny_train_config, corpus, tmp_path):
    partial = tmp_path / "partial"
    shutil.copytree(corpus, partial)
    (partial / "data" / "train-00002-of-00004.parquet").unlink()
    with pytest.raises(FileNotFoundError, match=r"shards of split 'train' are missing: data/train-00002-of-00004"
                                                r"\.parquet \(1 of 4\)"):
        fit(tiny_train_config(data=str(partial), streaming=True, eval_tasks=[]))


def test_label_positives_without_a_label_column_is_an_error(tiny_train_config, tmp_path):
    table = tmp_path / "pairs.csv"
    from dataset_scripts import synthetic_dataset

    chips = synthetic_dataset(8, 0, 32)["train"]
    rows = []
    for i, example in enumerate(chips):
        example["image"].save(tmp_path / f"{i}.png")
        rows.append(f"{i}.png,{example['captions'][0]}")
    table.write_text("image,caption\n" + "\n".join(rows) + "\n")
    with pytest.raises(ValueError, match="multi_positive: label needs a ClassLabel 'label' column"):
        fit(tiny_train_config(data=str(table), multi_positive="label", eval_split=None))


def test_collator_epoch_reaches_persistent_workers(synthetic_tokenizer_dir):
    from dataset_scripts import synthetic_dataset
    from modeling_sarclip import SarclipImageProcessor, SarclipProcessor, SarclipTokenizer
    from train.sarclip.data import ImageTextCollator, training_view

    processor = SarclipProcessor(SarclipImageProcessor(size=32), SarclipTokenizer.from_pretrained(synthetic_tokenizer_dir))
    view = training_view(synthetic_dataset(8, 0, 32)["train"])
    collator = ImageTextCollator(processor, seed=0)
    loader = DataLoader(view, batch_size=8, collate_fn=collator, num_workers=1, persistent_workers=True)
    first = next(iter(loader))["input_ids"]
    collator.epoch = 1
    second = next(iter(loader))["input_ids"]  # the same worker process, started in epoch 0
    assert torch.equal(second, collator(list(view))["input_ids"]) and not torch.equal(first, second)


def test_compiled_training_matches_eager(tiny_train_config, tmp_path):
    eager = fit(tiny_train_config(output_dir=str(tmp_path / "eager"), max_steps=3))
    compiled = fit(tiny_train_config(output_dir=str(tmp_path / "compiled"), max_steps=3, compile=True))
    assert compiled.losses == pytest.approx(eager.losses, rel=1e-4)
    saved = load_file(compiled.model_dir / "model.safetensors")
    assert saved.keys() == _weights(eager).keys()  # no "_orig_mod." prefixes: the folder loads like any other
