"""Screening and reconstruction passes on hand-constructed scores, then with a tiny SAR-KnowLIP."""

import math

import torch

from train.knowlip.scio_passes import ModelTextOps, reconstruct_texts, screen_texts

TRUTH = {0: {"ship", "sea", "port"}}


def word_scorer(rows, texts):
    """Hand-made scores: ITC loss = share of words not true of the image; ITM = coverage of its true words x
    (1 - that share); ITC rank = 1 - that share. Removing false words helps both; removing true words hurts
    coverage."""
    itc, itm = [], []
    for row, text in zip(rows, texts):
        words = " ".join(part for part in text if part).split()
        wrong = sum(word not in TRUTH[row] for word in words) / max(len(words), 1)
        coverage = len(TRUTH[row] & set(words)) / len(TRUTH[row])
        itc.append(wrong)
        itm.append(coverage * (1 - wrong))
    return torch.tensor(itc), torch.tensor(itm), 1 - torch.tensor(itc)


def test_screening_flags_exactly_the_fragment_whose_removal_helps_itc_and_itm():
    text = ["ship sea", "junk trash", "port junk junk junk", ""]
    result = screen_texts([text], word_scorer)
    # full text: 5 of 8 words wrong, all truth covered. Removing "ship sea": more wrong -> kept. Removing "junk trash":
    # ITC 0.625 -> 0.5 and ITM 0.375 -> 0.5 -> noise. Removing "port junk junk junk": ITC falls (candidate) but ITM
    # falls too (loses "port") -> kept. The empty sub-text is not screened.
    assert result.noise == [[False, True, False, False]]
    assert (result.candidates, result.noisy) == (2, 1)
    assert math.isclose(result.delta_itc[0][1], -0.125) and math.isclose(result.delta_itm[0][1], 0.125)
    assert result.delta_itc[0][0] > 0 and result.delta_itm[0][2] < 0 and math.isnan(result.delta_itc[0][3])


def test_a_text_of_one_sub_text_is_not_screened():
    # one caption = one sub-text: removing it would leave no text, so it is never a candidate
    result = screen_texts([["junk trash"]], word_scorer)
    assert result.noise == [[False]] and result.candidates == 0 and math.isnan(result.delta_itc[0][0])


def test_reconstruction_keeps_only_improving_fragments():
    texts = [["ship sea", "junk trash", "port"]] * 3
    noise = [[False, True, False]] * 3
    proposals = {0: "port sea", 1: "junk junk junk", 2: "  "}  # improves | worse | empty

    def fill(rows, masked):
        assert all(text[1] == "[MASK]" and text[0] == "ship sea" for text in masked)  # eq. 12: only p_j masked
        return [proposals[position] for position in range(len(rows))]

    def scorer(rows, texts):
        return word_scorer([0] * len(rows), texts)

    result = reconstruct_texts(texts, noise, fill, scorer, mask_token="[MASK]")
    assert result.texts[0] == ["ship sea", "port sea", "port"]
    assert result.refined[0] == [False, True, False] and result.noise[0] == [False, False, False]
    assert result.texts[1] == texts[1] and result.noise[1] == [False, True, False]  # rejected: stays noise
    assert result.texts[2] == texts[2] and math.isnan(result.delta_itc[2][1])
    assert result.counts == {"attempted": 3, "accepted": 1, "empty": 1}
    assert result.delta_itc[0][1] < 0 < result.delta_itm[0][1]
    assert result.delta_itc[1][1] > 0


def test_model_ops_score_and_fill_with_a_tiny_knowlip(tiny_model, processor, scio_dataset):
    model = tiny_model().eval()
    tokenizer = processor.tokenizer
    pixel_values = processor.image_processor(scio_dataset[:2]["image"], return_tensors="pt")["pixel_values"]
    image_embeds, _ = model.encode_image(pixel_values)
    ops = ModelTextOps(model, tokenizer, image_embeds, torch.tensor([0, 1]), max_length=128, max_fragment_tokens=4,
                       chunk_size=3)
    texts = scio_dataset[:2]["subtexts"]
    itc, itm, rank = ops.score([0, 1, 1, 0], [texts[0], texts[1], texts[0], texts[1]])
    assert itc.shape == itm.shape == rank.shape == (4,) and torch.isfinite(itc).all() and ((itm > 0) & (itm < 1)).all()
    assert ((rank >= 0) & (rank <= 1)).all()
    encoded = processor(text=[" ".join(texts[1])], max_length=128)
    direct = model.score_pairs(encoded["input_ids"], encoded["attention_mask"], image_embeds=image_embeds[1:],
                               image_ids=torch.tensor([1]))
    # the ITC loss above its uniform value (the loss of a guess with no preference)
    assert torch.allclose(itc[1], direct.itc_loss[0] - direct.itc_uniform[0], atol=1e-5)
    assert torch.allclose(itm[1], direct.itm_score[0], atol=1e-5)
    # the rank: the share of queued texts less similar to the image than its own text
    image_feat = torch.nn.functional.normalize(model.vision_proj(image_embeds[1:, 0]), dim=-1)
    text_out_m = model.text_encoder_m(input_ids=encoded["input_ids"], attention_mask=encoded["attention_mask"])
    text_feat_m = torch.nn.functional.normalize(model.text_proj_m(model.pool_text(
        text_out_m.last_hidden_state, encoded["attention_mask"])), dim=-1)  # the queue's (momentum) features
    expected = (image_feat @ model.queue.text_feats.t() < (image_feat * text_feat_m).sum()).float().mean()
    assert torch.allclose(rank[1], expected, atol=1e-6)
    masked = [[tokenizer.mask_token if j == 3 else part for j, part in enumerate(text)] for text in texts]
    fragments = ops.fill([0, 1], masked)
    assert len(fragments) == 2 and all(isinstance(fragment, str) for fragment in fragments)
    assert len(tokenizer(fragments[0], add_special_tokens=False)["input_ids"]) <= 4
    assert ops.fill([0], [texts[0]]) == [""]  # no [MASK] in the text: nothing to fill
