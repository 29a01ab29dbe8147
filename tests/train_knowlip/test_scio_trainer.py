"""A tiny end-to-end SCIO run on synthetic SAR chips: text versions, noise pool, refined texts, resume."""

import dataclasses
import json
import math

import pytest
import torch
from accelerate import Accelerator
from transformers import AutoProcessor

from modeling_knowlip import SarKnowlipModel
from train.knowlip import ScioConfig, ScioTrainer, load_text_version
from train.sarclip.data import caption_id


def _config(output_dir, **changes):
    return ScioConfig(output_dir=str(output_dir), stage_epochs=(1, 1, 1), batch_size=3, learning_rate=1e-3,
                      warmup_steps=2, max_length=96, max_fragment_tokens=6, pass_batch_size=4, seed=0, **changes)


PAPER_SCREENING = {"screening_margin": 0.0, "pair_itc_screening": False}  # eqs. 10-11 exactly


def _log(output_dir):
    return [json.loads(line) for line in (output_dir / "metrics.jsonl").read_text().splitlines()]


def test_scio_run_writes_noise_pool_and_refined_texts_and_resumes(tiny_model, processor, scio_dataset, tmp_path,
                                                                  monkeypatch):
    original = scio_dataset["subtexts"]
    # 1) a run that dies in the reconstruction pass, after stage 1, screening and stage 2
    def crash(self):
        raise RuntimeError("simulated crash")
    monkeypatch.setattr(ScioTrainer, "_reconstruction_pass", crash)
    # seed 2: a model whose screening flags some sub-texts (mean text pooling; with seed 0 it flags none)
    trainer = ScioTrainer(tiny_model(seed=2), processor, scio_dataset, _config(tmp_path, **PAPER_SCREENING),
                          Accelerator(cpu=True))
    with pytest.raises(RuntimeError, match="simulated crash"):
        trainer.run()
    monkeypatch.undo()
    log = _log(tmp_path)
    assert [(r["kind"], r["stage"]) for r in log] == [("train", 1), ("screen", 2), ("train", 2)]
    assert log[0]["steps"] == 2 and log[0]["skipped_batches"] == 0 and log[0]["truncated_texts"] == 0
    assert all(math.isfinite(r["loss"]) for r in log if r["kind"] == "train")

    v0, v1 = load_text_version(tmp_path, 0), load_text_version(tmp_path, 1)
    assert v0["subtexts"] == original and not any(map(any, v0["noise"]))
    assert v1["subtexts"] == original  # screening only flags
    for noise, d_itc, d_itm in zip(v1["noise"], v1["delta_itc"], v1["delta_itm"]):
        assert len(noise) == 8
        assert noise == [a < 0 and b > 0 for a, b in zip(d_itc, d_itm)]  # eqs. 10-11
    assert log[1]["noisy"] == sum(map(sum, v1["noise"])) and log[1]["candidates"] >= log[1]["noisy"]
    assert log[1]["noisy"] > 0  # (seeded) so that the reconstruction checks below are not vacuous

    # 2) a new trainer on the same folder resumes with the reconstruction pass, then trains stage 3
    resumed = ScioTrainer(tiny_model(seed=1), processor, scio_dataset, _config(tmp_path, **PAPER_SCREENING),
                          Accelerator(cpu=True))
    final = resumed.run()
    log = _log(tmp_path)
    assert [(r["kind"], r["stage"]) for r in log[3:]] == [("reconstruct", 3), ("train", 3)]
    assert log[4]["step"] == log[2]["step"] + 2  # steps continue from the checkpoint
    v2 = load_text_version(tmp_path, 2)
    assert final["subtexts"] == v2["subtexts"]
    assert log[3]["attempted"] == sum(map(sum, v1["noise"]))
    for before, after, noise_before, noise_after, refined in zip(original, v2["subtexts"], v1["noise"], v2["noise"],
                                                                 v2["refined"]):
        for j in range(8):
            if refined[j]:  # replaced fragments were noise and leave the pool
                assert noise_before[j] and not noise_after[j] and after[j] != before[j]
            else:
                assert after[j] == before[j] and noise_after[j] == noise_before[j]
    assert log[3]["accepted"] == sum(map(sum, v2["refined"]))  # acceptance itself: test_scio_passes.py

    # the final model is a normal checkpoint, and the finished run resumes to nothing new
    model = SarKnowlipModel.from_pretrained(tmp_path / "model")
    assert model.queue.ptr.item() == (3 * 6) % 16
    assert AutoProcessor.from_pretrained(tmp_path / "model").tokenizer.vocab == processor.tokenizer.vocab
    assert "SCIO on 6 images" in (tmp_path / "model" / "README.md").read_text()
    again = ScioTrainer(tiny_model(), processor, scio_dataset, _config(tmp_path, **PAPER_SCREENING),
                        Accelerator(cpu=True)).run()
    assert again["subtexts"] == v2["subtexts"] and len(_log(tmp_path)) == 5


def test_a_folder_of_another_run_is_refused(tiny_model, processor, scio_dataset, tmp_path):
    (tmp_path / "scio_run.json").write_text(json.dumps({"num_images": 99, "units": [["train", 1]]}))
    trainer = ScioTrainer(tiny_model(), processor, scio_dataset, _config(tmp_path), Accelerator(cpu=True))
    with pytest.raises(ValueError, match="belongs to a different SCIO run"):
        trainer.run()


def test_a_finished_run_is_not_resumed_with_other_texts_or_another_seed(tiny_model, processor, scio_dataset, tmp_path):
    config = dataclasses.replace(_config(tmp_path), stage_epochs=(1, 0, 0))
    ScioTrainer(tiny_model(), processor, scio_dataset, config, Accelerator(cpu=True)).run()
    log_before = (tmp_path / "metrics.jsonl").read_text()
    other_seed = ScioTrainer(tiny_model(), processor, scio_dataset, dataclasses.replace(config, seed=1),
                             Accelerator(cpu=True))
    with pytest.raises(ValueError, match=r"belongs to a different SCIO run \(its seed differ"):
        other_seed.run()
    texts = [list(reversed(t)) for t in scio_dataset["subtexts"]]  # same images, other texts
    other_texts = scio_dataset.remove_columns("subtexts").add_column("subtexts", texts)
    with pytest.raises(ValueError, match=r"its texts_sha1 differ"):
        ScioTrainer(tiny_model(), processor, other_texts, config, Accelerator(cpu=True)).check_run_folder()
    assert (tmp_path / "metrics.jsonl").read_text() == log_before  # nothing trained or logged
    ScioTrainer(tiny_model(), processor, scio_dataset, config, Accelerator(cpu=True)).check_run_folder()  # the same run


def test_bad_sub_text_rows_are_named(tiny_model, processor, scio_dataset, tmp_path):
    broken = scio_dataset.remove_columns("subtexts").add_column("subtexts", [["ok"]] * 5 + [[]])
    with pytest.raises(ValueError, match="row 5 has no non-empty sub-text"):
        ScioTrainer(tiny_model(), processor, broken, _config(tmp_path), Accelerator(cpu=True))


def test_default_screening_flags_whole_texts_whose_itc_loss_is_above_chance(tiny_model, processor, scio_dataset,
                                                                          tmp_path):
    """By default screening also flags each text whose ITC loss is above its uniform value (every sub-text joins the
    noise pool), checked against the saved model's own `score_pairs`; the paper's screening flags no whole text."""
    def screening(folder, **changes):
        config = dataclasses.replace(_config(folder, **changes), stage_epochs=(3, 0, 0))
        # (seeded: a model whose texts end above chance, so that the comparison below is not vacuous)
        ScioTrainer(tiny_model(seed=3), processor, scio_dataset, config, Accelerator(cpu=True)).run()
        return next(r for r in _log(folder) if r["kind"] == "screen"), load_text_version(folder, 1)

    paper, _ = screening(tmp_path / "paper", **PAPER_SCREENING)
    assert paper["noisy_pairs"] == 0
    record, v1 = screening(tmp_path / "default")
    model = SarKnowlipModel.from_pretrained(tmp_path / "default" / "model").eval()  # no training after screening
    texts = [" ".join(text) for text in scio_dataset["subtexts"]]
    encoded = processor(text=texts, max_length=96)
    pixel_values = processor.image_processor(list(scio_dataset["image"]), return_tensors="pt")["pixel_values"]
    with torch.no_grad():
        scores = model.score_pairs(encoded["input_ids"], encoded["attention_mask"], pixel_values=pixel_values,
                                   image_ids=torch.arange(len(texts)),
                                   group_ids=torch.tensor([caption_id(text) for text in texts]))
    above_chance = (scores.itc_loss > scores.itc_uniform).tolist()
    assert record["noisy_pairs"] == sum(above_chance) > 0
    assert all(all(flags) for flags, flagged in zip(v1["noise"], above_chance) if flagged)
