"""Zero-shot prompt classification: template sets, prompt ensembles, metrics and the confusion-matrix PNG."""

import pytest
import torch
import torch.nn.functional as F

from dataset_scripts.captions import load_templates
from train.evaluation.encode import encode_texts
from train.evaluation.zero_shot import (
    class_embeddings,
    classify,
    evaluate_zero_shot,
    load_template_set,
    save_confusion_matrix,
    template_sets,
)

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def test_template_sets():
    sets = template_sets()
    assert {"sar_simple", "sar_ensemble", "sarclip_1m"} <= set(sets)
    assert load_template_set("sar_simple") == ("a SAR image of a {class}.",)
    assert load_template_set("sarclip_1m") == load_templates().classification  # the training caption templates
    assert len(load_template_set("sarclip_1m")) == 10
    with pytest.raises(ValueError, match="unknown template set 'nope'"):
        load_template_set("nope")


def test_prompt_ensemble_is_the_renormalised_mean_of_normalised_prompt_embeddings(make_model, processor):
    model = make_model()
    templates = ("a SAR image of a {class}.", "a radar image of the {class}.", "{class} in SAR.")
    ensemble = class_embeddings(model, processor, ["ship", "tank"], templates, batch_size=4)
    for row, name in enumerate(["ship", "tank"]):
        prompts = [t.format_map({"class": name}) for t in templates]
        expected = F.normalize(encode_texts(model, processor, prompts).mean(dim=0), dim=0)
        torch.testing.assert_close(ensemble[row], expected, rtol=0, atol=1e-6)
    assert torch.allclose(ensemble.norm(dim=1), torch.ones(2))
    with pytest.raises(ValueError, match="distinct"):
        class_embeddings(model, processor, ["ship", "ship"], templates)


def test_classify_known_answer():
    class_features = torch.eye(3)
    scores = [[0.9, 0.3, 0.1], [0.2, 0.1, 0.9], [0.5, 0.4, 0.1], [0.1, 0.3, 0.2]]
    image_features = F.normalize(torch.tensor(scores), dim=1)
    labels = [0, 2, 1, 1]  # predictions: 0, 2, 0 (1 second), 1
    results = classify(image_features, class_features, labels)
    assert results["top1"] == 75.0
    assert results["top3"] == 100.0
    assert results["per_class_accuracy"] == [100.0, 50.0, 100.0]
    assert results["confusion_matrix"] == [[1, 0, 0], [1, 1, 0], [0, 0, 1]]


def test_evaluate_zero_shot_writes_the_confusion_matrix(make_model, processor, tmp_path):
    model = make_model()
    torch.manual_seed(1)
    image_features = F.normalize(torch.randn(12, 16), dim=1)
    labels = [i % 4 for i in range(12)]
    names = ["vehicle", "ship", "aircraft", "building"]
    results = evaluate_zero_shot(model, processor, image_features, labels, names, tmp_path, template_set="sar_simple")
    png = tmp_path / "zero_shot_confusion_matrix.png"
    assert png.read_bytes()[:8] == PNG_SIGNATURE and png.stat().st_size > 1000
    assert set(results) >= {"zero_shot/top1", "zero_shot/top3", "zero_shot/mean_class_accuracy"}
    assert {f"zero_shot/class_accuracy/{n}" for n in names} <= set(results)
    per_class = [results[f"zero_shot/class_accuracy/{n}"] for n in names]
    assert results["zero_shot/top1"] == pytest.approx(sum(per_class) / 4)  # balanced: 3 images per class
    assert results["zero_shot/num_prompts_per_class"] == 1.0
    from train.evaluation.retrieval import class_search_precision
    from train.evaluation.zero_shot import class_embeddings, load_template_set

    classes = class_embeddings(model, processor, names, load_template_set("sar_simple"))
    expected = class_search_precision(image_features @ classes.T, labels)  # the same prompts as search queries
    assert results["class_search/mAP"] == pytest.approx(expected["mAP"])
    assert results["class_search/P@10"] == pytest.approx(expected["P@10"])


def test_save_confusion_matrix_png(tmp_path):
    path = tmp_path / "cm.png"
    save_confusion_matrix([[3, 1], [0, 4]], ["a", "b"], path, "title")
    assert path.read_bytes()[:8] == PNG_SIGNATURE and path.stat().st_size > 1000
