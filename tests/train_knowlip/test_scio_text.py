import torch

from train.knowlip.scio_text import encode_subtexts, replaced, without


def test_fragments_keep_their_token_positions(processor):
    tokenizer = processor.tokenizer
    texts = [["the scene background is sea", "the target is a ship"], ["the terrain is flat", ""]]
    encoded = encode_subtexts(tokenizer, texts, max_length=64)
    joined = tokenizer([" ".join(part for part in text if part) for text in texts], padding=True,
                       return_tensors="pt", return_token_type_ids=False)
    assert torch.equal(encoded.input_ids, joined["input_ids"])  # same ids as tokenizing the joined text
    assert torch.equal(encoded.attention_mask, joined["attention_mask"])
    first = len(tokenizer("the scene background is sea", add_special_tokens=False)["input_ids"])
    row = encoded.fragment_index[0][encoded.attention_mask[0].bool()].tolist()
    assert row[0] == -1 and row[-1] == -1 and row[1 : 1 + first] == [0] * first and set(row[1 + first : -1]) == {1}
    noise = encoded.token_mask([[False, True], [True, False]])
    assert noise[0].sum() == len(row) - 2 - first and noise[1].sum() == encoded.attention_mask[1].sum() - 2
    assert encoded.truncated == 0


def test_masked_and_removed_fragments(processor):
    tokenizer = processor.tokenizer
    text = ["the scene background is sea", "the target is a ship", "the terrain is flat"]
    assert without(text, 1) == ["the scene background is sea", None, "the terrain is flat"]
    masked = encode_subtexts(tokenizer, [replaced(text, 1, tokenizer.mask_token)], max_length=64)
    ids = masked.input_ids[0].tolist()
    assert ids.count(tokenizer.mask_token_id) == 1
    assert masked.fragment_index[0, ids.index(tokenizer.mask_token_id)] == -1  # the [MASK] is no fragment token
    removed = encode_subtexts(tokenizer, [without(text, 1)], max_length=64)
    assert 1 not in removed.fragment_index[0].tolist()


def test_long_texts_are_cut_and_counted(processor):
    encoded = encode_subtexts(processor.tokenizer, [["the scene background is sea"] * 8, ["sea"]], max_length=10)
    assert encoded.input_ids.shape[1] == 10 and encoded.truncated == 1
    assert encoded.input_ids[0, -1] == processor.tokenizer.sep_token_id
