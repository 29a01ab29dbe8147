"""Batched feature extraction: normalised, batch-size independent, mode restoring, optional .npy cache."""

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from train.evaluation.encode import cached_image_features, encode_images, encode_texts


def test_image_features_match_the_model_and_do_not_depend_on_batch_size(make_model, processor, tiny_dataset):
    model = make_model()
    images = tiny_dataset["test"]["image"]
    features = encode_images(model, processor, images, batch_size=4)
    assert features.shape == (15, 16) and features.dtype == torch.float32
    assert torch.allclose(features.norm(dim=1), torch.ones(15), atol=1e-6)
    torch.testing.assert_close(features, encode_images(model, processor, images, batch_size=64), rtol=0, atol=1e-6)
    with torch.no_grad():
        direct = model.get_image_features(processor(images=list(images[:3]))["pixel_values"]).pooler_output
    torch.testing.assert_close(features[:3], F.normalize(direct, dim=-1), rtol=0, atol=1e-6)


def test_text_features_and_train_mode_is_restored(make_model, processor):
    model = make_model().train()
    texts = ["a SAR image of a ship.", "a SAR image of a tank.", "a SAR image of a bridge."]
    features = encode_texts(model, processor, texts, batch_size=2)
    assert model.training  # eval() only inside the call
    assert features.shape == (3, 16) and not features.requires_grad
    with torch.no_grad():
        direct = model.eval().get_text_features(processor(text=texts)["input_ids"]).pooler_output
    torch.testing.assert_close(features, F.normalize(direct, dim=-1), rtol=0, atol=1e-6)


def test_duplicate_texts_are_encoded_once_and_repeated(make_model, processor):
    model = make_model()
    texts = ["a SAR image of a ship.", "a SAR image of a tank.", "a SAR image of a ship."]
    features = encode_texts(model, processor, texts, batch_size=1)
    assert features.shape == (3, 16)
    assert torch.equal(features[0], features[2])
    torch.testing.assert_close(features[:2], encode_texts(model, processor, texts[:2]), rtol=0, atol=1e-6)


def test_autocast_bf16_stays_close_to_fp32(make_model, processor):
    model = make_model()
    texts = ["a SAR image of a ship.", "a SAR image of a tank."]
    fp32 = encode_texts(model, processor, texts)
    bf16 = encode_texts(model, processor, texts, autocast_dtype=torch.bfloat16)
    assert bf16.dtype == torch.float32
    assert (fp32 * bf16).sum(dim=1).min() > 0.99  # cosine similarity


def test_npy_cache_is_written_once_and_checked(make_model, processor, tiny_dataset, tmp_path):
    model = make_model()
    images = tiny_dataset["test"]["image"]
    cache = tmp_path / "cache" / "test_features.npy"
    first = cached_image_features(model, processor, images, cache, batch_size=8)
    assert cache.is_file() and not list(cache.parent.glob("*.partial.npy"))
    np.save(cache, np.load(cache) * 0 + 7)  # a changed cache is read back as it is, not recomputed
    assert torch.all(cached_image_features(model, processor, images, cache) == 7)
    np.save(cache, first.numpy()[:5])
    with pytest.raises(ValueError, match="expected 15 rows"):
        cached_image_features(model, processor, images, cache)
    with pytest.raises(ValueError, match="must end in .npy"):
        cached_image_features(model, processor, images, tmp_path / "features.bin")


def test_length_sorted_batches_padded_to_their_longest_text_give_the_77_token_features(make_model, processor):
    model = make_model()
    texts = ["In this SAR image, strong scattering points and shadows characterise the T-72 tank.", "a ship",
             "a SAR image of the BMP-2 infantry fighting vehicle.", "tank", "a SAR image of a ship."]
    features = encode_texts(model, processor, texts, batch_size=2)  # batches: 2 shortest, 2 next, the longest
    with torch.no_grad():
        fixed = model.get_text_features(processor(text=texts, padding="max_length")["input_ids"]).pooler_output
    torch.testing.assert_close(features, F.normalize(fixed, dim=-1), rtol=0, atol=1e-6)  # same rows, same order
