"""SARVLM-style ensembles: one member equals the model; feature and logit averaging; compatibility checks."""

import pytest
import torch
import torch.nn.functional as F

from train.evaluation import SarclipEnsemble, encode_images, encode_texts, run_evaluation

TEXTS = ["a SAR image of a ship.", "a SAR image of a tank.", "a SAR image of a bridge."]


@pytest.mark.parametrize("combine", ["features", "logits"])
def test_ensemble_of_one_model_equals_the_model(make_model, processor, tiny_dataset, class_names, tmp_path, combine):
    model = make_model()
    ensemble = SarclipEnsemble([model], combine=combine)
    images = tiny_dataset["test"]["image"]
    torch.testing.assert_close(encode_images(ensemble, processor, images), encode_images(model, processor, images),
                               rtol=0, atol=1e-6)
    torch.testing.assert_close(encode_texts(ensemble, processor, TEXTS), encode_texts(model, processor, TEXTS),
                               rtol=0, atol=1e-6)
    if combine == "features":
        tasks = ("retrieval", "zero_shot")
        alone = run_evaluation(model, processor, tiny_dataset, class_names, tmp_path / "model", tasks, 16)
        joint = run_evaluation(ensemble, processor, tiny_dataset, class_names, tmp_path / "ens", tasks, 16)
        spread = ("image_feature_cosine", "text_feature_cosine")  # float32 feature rounding: ~1e-10 apart
        assert {k: v for k, v in joint.items() if k not in spread} == {k: v for k, v in alone.items() if k not in spread}
        assert [joint[k] for k in spread] == pytest.approx([alone[k] for k in spread], abs=1e-6)


def test_feature_averaging_is_the_mean_of_normalised_features(make_model, processor):
    members = [make_model(seed=0), make_model(seed=1)]
    joint = encode_texts(SarclipEnsemble(members, "features"), processor, TEXTS)
    mean = (encode_texts(members[0], processor, TEXTS) + encode_texts(members[1], processor, TEXTS)) / 2
    torch.testing.assert_close(joint, F.normalize(mean, dim=-1), rtol=0, atol=1e-6)


def test_logit_averaging_gives_the_mean_cosine_similarity(make_model, processor, tiny_dataset):
    members = [make_model(seed=0), make_model(seed=2, embed_dim=8)]  # embedding sizes may differ
    ensemble = SarclipEnsemble(members, "logits")
    images = tiny_dataset["test"]["image"][:4]
    similarity = encode_images(ensemble, processor, images) @ encode_texts(ensemble, processor, TEXTS).T
    per_member = [encode_images(m, processor, images) @ encode_texts(m, processor, TEXTS).T for m in members]
    torch.testing.assert_close(similarity, (per_member[0] + per_member[1]) / 2, rtol=0, atol=1e-6)


def test_incompatible_members_are_refused(make_model):
    with pytest.raises(ValueError, match="embed_dim.*combine='logits'"):
        SarclipEnsemble([make_model(seed=0), make_model(seed=1, embed_dim=8)], "features")
    bigger_images = make_model(seed=1, vision_config=dict(image_size=64, layers=1, width=32, head_width=16,
                                                          patch_size=8))
    with pytest.raises(ValueError, match="image_size"):
        SarclipEnsemble([make_model(seed=0), bigger_images], "logits")
    with pytest.raises(ValueError, match="unknown combine mode"):
        SarclipEnsemble([make_model()], "vote")


def test_from_pretrained_loads_saved_checkpoints(make_model, processor, tmp_path):
    members = [make_model(seed=0), make_model(seed=1)]
    for index, model in enumerate(members):
        model.save_pretrained(tmp_path / f"member{index}")
    loaded = SarclipEnsemble.from_pretrained([str(tmp_path / "member0"), str(tmp_path / "member1")])
    torch.testing.assert_close(encode_texts(loaded, processor, TEXTS),
                               encode_texts(SarclipEnsemble(members), processor, TEXTS), rtol=0, atol=1e-6)
