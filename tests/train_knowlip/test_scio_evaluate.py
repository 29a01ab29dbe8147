"""`evaluate_knowlip` and `python -m train.knowlip eval` on a tiny random SAR-KnowLIP: synthetic chips for retrieval
and captioning, real MSTAR chips (through `vqa_sets`) for VQA."""

import json

import pytest
import torch

from dataset_scripts.geovl.vqa_sets import mstar_recognition_vqa
from modeling_knowlip import SarKnowlipForImageTextRetrieval
from modeling_knowlip.configuration_knowlip import VQA_TASK_TYPES
from train.knowlip.__main__ import main
from train.knowlip.synthetic_texts import synthetic_scio_dataset
from train.knowlip.evaluate import (
    evaluate_knowlip,
    evaluate_retrieval,
    load_image_texts,
    rerank_score_matrix,
)
from train.evaluation.retrieval import retrieval_recalls

RECALLS = {"i2t_R@1", "i2t_R@5", "i2t_R@10", "t2i_R@1", "t2i_R@5", "t2i_R@10", "mean_recall", "num_images",
           "num_texts", "images_without_captions"}


@pytest.fixture
def model_dir(tmp_path, tiny_model, processor):
    folder = tmp_path / "model"
    tiny_model(seed=1).save_pretrained(folder)
    processor.save_pretrained(folder)
    return folder


def test_rerank_puts_the_itm_order_above_the_itc_order():
    itc = torch.tensor([[0.9, 0.1, 0.5, -0.3], [0.2, 0.8, -1.0, 0.4]])
    indices = torch.tensor([[0, 2], [1, 3]])  # each row's ITC top 2
    itm = torch.tensor([[-3.0, 7.0], [1.5, 0.5]])
    scores = rerank_score_matrix(itc, indices, itm)
    assert scores.argsort(dim=1, descending=True).tolist() == [[2, 0, 1, 3], [1, 3, 0, 2]]
    assert torch.equal(scores[0, [1, 3]], itc[0, [1, 3]]) and torch.equal(scores[1, [0, 2]], itc[1, [0, 2]])
    assert (scores.gather(1, indices) >= 2).all()  # above every cosine similarity
    assert not torch.equal(scores.argsort(dim=1), itc.argsort(dim=1))
    # k = 1: the ITC ranking unchanged
    top1 = rerank_score_matrix(itc, itc.topk(1, dim=1).indices, torch.tensor([[-5.0], [9.0]]))
    assert torch.equal(top1.argsort(dim=1), itc.argsort(dim=1))


def test_retrieval_rerank_matches_itc_at_k1_and_full_itm_at_k_all(tiny_model, processor, scio_dataset):
    model = tiny_model(seed=2)
    images, texts = load_image_texts(scio_dataset, image_size=32)
    at_1 = evaluate_retrieval(model, processor, images, texts, k=1, batch_size=4)  # a plain model is converted
    assert at_1["itm"] == at_1["itc"] and at_1["k"] == 1
    assert (at_1["itm"]["num_images"], at_1["itm"]["num_texts"]) == (6, 6)
    retrieval = SarKnowlipForImageTextRetrieval(model.config)
    retrieval.load_state_dict(model.state_dict())
    retrieval.eval()
    at_all = evaluate_retrieval(retrieval, processor, images, texts, k=6, batch_size=4)
    # with every text a candidate, the ranking is ITM's alone: score all 36 pairs directly
    pixel_values = processor(images=images)["pixel_values"]
    encoded = processor(text=[t for refs in texts for t in refs], max_length=128)
    with torch.no_grad():
        image_embeds, _ = retrieval.encode_image(pixel_values)
        text_embeds, _ = retrieval.encode_text(encoded["input_ids"], encoded["attention_mask"])
        itm = torch.stack([
            retrieval.itm_logits(image_embeds[i].expand(6, -1, -1), text_embeds, encoded["attention_mask"])[:, 1]
            for i in range(6)
        ])
    expected = retrieval_recalls(itm, list(range(6)))
    assert at_all["itm"] == pytest.approx(expected, abs=1e-9)
    assert at_all["itc"] == at_1["itc"]


def test_evaluate_all_tasks_writes_results(model_dir, scio_dataset, sar_data_dir, tmp_path):
    vqa = mstar_recognition_vqa(sar_data_dir, max_per_class=1)
    out = tmp_path / "eval"
    results = evaluate_knowlip(model_dir, None, ["retrieval", "captioning", "vqa"], out, data=scio_dataset,
                               vqa_data=vqa, batch_size=4)
    assert set(results) == {"retrieval", "captioning", "vqa"}
    retrieval = results["retrieval"]
    assert set(retrieval["itm"]) == set(retrieval["itc"]) == RECALLS
    assert all(0 <= v <= 100 for v in [*retrieval["itm"].values(), *retrieval["itc"].values()])
    assert retrieval["itm"]["i2t_R@10"] == retrieval["itm"]["t2i_R@10"] == 100.0  # 6 images, 6 texts
    captioning = results["captioning"]
    assert {"bleu_4", "meteor", "rouge_l", "cider"} <= set(captioning) and captioning["images"] == 6
    assert all(0 <= captioning[m] <= 100 for m in ("bleu_4", "meteor", "rouge_l")) and captioning["cider"] >= 0
    assert results["vqa"]["questions"] == {"target recognition": len(vqa)} and len(vqa) >= 5
    assert set(results["vqa"]["per_task"]) == {"target recognition"} <= set(VQA_TASK_TYPES)
    assert 0 <= results["vqa"]["overall"] <= 100
    assert json.loads((out / "eval_results.json").read_text()) == results
    captions = [json.loads(line) for line in (out / "captions.jsonl").read_text().splitlines()]
    assert len(captions) == 6 and all(c["prediction"].strip() for c in captions)
    assert captions[0]["references"] == [" ".join(scio_dataset[0]["subtexts"])]
    answers = [json.loads(line) for line in (out / "vqa_answers.jsonl").read_text().splitlines()]
    assert [a["answer"] for a in answers] == vqa["answer"]


def test_cli_eval_on_synthetic_data(model_dir, tmp_path, capsys):
    out = tmp_path / "cli"
    assert main(["eval", str(model_dir), "--tasks", "retrieval", "--data", "synthetic", "--out", str(out),
                 "--k", "4"]) == 0
    results = json.loads((out / "eval_results.json").read_text())
    assert set(results) == {"retrieval"} and results["retrieval"]["k"] == 4
    # identical synthetic texts count as one text carrying all their images
    texts = {" ".join(subtexts) for subtexts in synthetic_scio_dataset(num_images=16, image_size=32, seed=0)["subtexts"]}
    assert (results["retrieval"]["itm"]["num_images"], results["retrieval"]["itm"]["num_texts"]) == (16, len(texts))
    assert f"results: {out}/eval_results.json" in capsys.readouterr().out


def test_bad_requests_are_named(model_dir, tmp_path, scio_dataset):
    with pytest.raises(ValueError, match=r"unknown evaluation tasks \['ocr'\]"):
        evaluate_knowlip(model_dir, None, ["ocr"], tmp_path, data="synthetic")
    with pytest.raises(ValueError, match="vqa needs `vqa_data`"):
        evaluate_knowlip(model_dir, None, ["vqa"], tmp_path)
    with pytest.raises(ValueError, match="needs a `captions`, `caption` or `subtexts` column"):
        load_image_texts(scio_dataset.remove_columns("subtexts"), image_size=32)


def test_one_encode_path_serves_both_families(tiny_model, processor, scio_dataset):
    """`train.evaluation.encode` reads SAR-KnowLIP through the transformers CLIP feature contract."""
    from train.evaluation.encode import encode_images, encode_texts

    model = tiny_model(seed=4).eval()
    texts = [" ".join(subtexts) for subtexts in scio_dataset["subtexts"]]
    images = encode_images(model, processor, scio_dataset["image"], batch_size=4)
    text_features = encode_texts(model, processor, texts, batch_size=4)
    with torch.no_grad():
        pixel_values = processor(images=list(scio_dataset["image"]))["pixel_values"]
        output = model.get_image_features(pixel_values)
        _, expected_images = model.encode_image(pixel_values)
        encoded = processor(text=texts)
        _, expected_texts = model.encode_text(encoded["input_ids"], encoded["attention_mask"])
    assert output.pooler_output.shape == (6, model.config.embed_dim)
    assert not torch.allclose(output.pooler_output.norm(dim=-1), torch.ones(6))  # projected, not normalised
    torch.testing.assert_close(images, expected_images, atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(text_features, expected_texts, atol=1e-5, rtol=1e-5)


def test_zero_shot_and_linear_probe_run_sarclips_evaluation_with_its_keys(model_dir, sar_data_dir, tmp_path, capsys):
    import shutil

    chips = tmp_path / "chips"
    for name in ("2S1", "BMP2", "T72"):
        (chips / name).mkdir(parents=True)
        for path in sorted((sar_data_dir / "mstar_soc" / "train" / name).glob("*.jpeg"))[:6]:
            shutil.copy(path, chips / name / path.name)
    assert main(["eval", str(model_dir), "--tasks", "zero_shot,linear_probe", "--data", str(chips),
                 "--out", str(tmp_path / "eval")]) == 0
    results = json.loads((tmp_path / "eval" / "eval_results.json").read_text())
    assert 0 <= results["zero_shot/top1"] <= 100 and 0 <= results["linear_probe/accuracy"] <= 100
    assert results["zero_shot/num_prompts_per_class"] > 1  # the SARCLIP prompt templates
    assert "image_feature_cosine" in results and "collapsed" in results
    with pytest.raises(ValueError, match="zero_shot and linear_probe need `data`"):
        evaluate_knowlip(model_dir, None, ["zero_shot"], tmp_path / "x")
