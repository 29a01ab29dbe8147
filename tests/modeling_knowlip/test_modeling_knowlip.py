import math

import pytest
import torch

from modeling_knowlip import (
    VQA_TASK_TYPES,
    SarKnowlipForConditionalGeneration,
    SarKnowlipForImageClassification,
    SarKnowlipForImageTextRetrieval,
    SarKnowlipForQuestionAnswering,
    SarKnowlipModel,
)
from modeling_knowlip.modeling_knowlip import interpolate_position_embeddings


def _model(tiny_config, cls=SarKnowlipModel, seed=0, **overrides):
    torch.manual_seed(seed)
    return cls(tiny_config(**overrides))


def _grad_norm(module) -> float:
    return sum(float(p.grad.abs().sum()) for p in module.parameters() if p.grad is not None)


def test_momentum_encoders_start_as_copies_and_never_get_gradients(tiny_config, batch):
    model = _model(tiny_config)
    for online, momentum in model.momentum_pairs():
        for p, p_m in zip(online.parameters(), momentum.parameters(), strict=True):
            assert torch.equal(p, p_m) and not p_m.requires_grad
    model.train()
    model(**batch(4), return_loss=True).loss.backward()
    assert all(p.grad is None for _, m in model.momentum_pairs() for p in m.parameters())


@pytest.mark.parametrize(
    "loss_name, reached, untouched",
    [
        ("loss_itc", ["vision_model", "vision_proj", "text_encoder", "text_proj", "temp"],
         ["fusion_encoder", "itm_head", "text_decoder"]),
        ("loss_itm", ["vision_model", "text_encoder", "fusion_encoder", "itm_head", "image_to_text"],
         ["text_decoder", "vision_proj", "text_proj", "temp"]),
        ("loss_mlm", ["vision_model", "text_encoder", "fusion_encoder", "text_decoder", "image_to_text"],
         ["itm_head", "vision_proj", "text_proj", "temp"]),
    ],
)
def test_each_loss_is_finite_and_trains_its_towers(tiny_config, batch, loss_name, reached, untouched):
    model = _model(tiny_config)
    model.train()
    out = model(**batch(4), return_loss=True)
    assert torch.isfinite(out.loss)
    assert torch.allclose(out.loss, out.loss_itc + out.loss_itm + out.loss_mlm)  # eq. 7, equal weights
    getattr(out, loss_name).backward()
    for name in reached:
        module = getattr(model, name)
        grad = module.grad.abs().sum() if name == "temp" else _grad_norm(module)
        assert grad > 0, f"{loss_name} does not reach {name}"
    for name in untouched:
        module = getattr(model, name)
        assert (module.grad is None) if name == "temp" else _grad_norm(module) == 0, f"{loss_name} reaches {name}"


def test_itc_is_infonce_against_momentum_bank_with_alpha_distillation(tiny_config, batch):
    inputs = batch(4)
    for alpha in (0.0, 0.4):
        # eval: no dropout, so the momentum encoders (still copies of the online ones) give the online similarities
        model = _model(tiny_config, alpha=alpha).eval()
        out = model(**inputs, return_loss=True)
        assert out.sim_i2t.shape == (4, 4 + model.config.queue_size)
        hard = torch.eye(4, out.sim_i2t.shape[1])
        expected = sum(
            -(sim.log_softmax(1) * (alpha * sim.detach().softmax(1) + (1 - alpha) * hard)).sum(1).mean()
            for sim in (out.sim_i2t, out.sim_t2i)
        ) / 2
        assert torch.allclose(out.loss_itc, expected, atol=1e-5)


def test_training_steps_fill_the_queue_and_move_the_momentum_encoders(tiny_config, batch):
    config = tiny_config()
    for sub in (config.vision_config, config.text_config):  # no dropout: momentum features = online features
        sub.hidden_dropout_prob = sub.attention_probs_dropout_prob = 0.0
    torch.manual_seed(0)
    model = SarKnowlipModel(config)
    inputs = batch(4)
    model.eval()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    model(**inputs, return_loss=True)
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())  # evaluating changes nothing
    model.train()
    optimizer = torch.optim.SGD(model.parameters(), lr=0.5)
    out = model(**inputs, image_ids=torch.tensor([7, 7, 8, 9]), return_loss=True)
    out.loss.backward()
    optimizer.step()
    assert model.queue.ptr.item() == 4
    assert model.queue.image_ids[:4].tolist() == [7, 7, 8, 9]
    # the features enqueued are the momentum ones (= online before the step)
    assert torch.allclose(model.queue.text_feats[:4], out.text_feats.detach(), atol=1e-5)
    model(**inputs, return_loss=True)
    m_weight = model.vision_proj_m.weight
    assert not torch.equal(m_weight, before["vision_proj_m.weight"])
    assert not torch.equal(m_weight, model.vision_proj.weight)  # an EMA, not a copy


def test_texts_of_one_image_are_itc_positives_and_never_itm_negatives(tiny_config, batch):
    model = _model(tiny_config)
    model.train()
    torch.manual_seed(1)
    inputs = batch(6)
    image_ids = torch.tensor([0, 0, 1, 1, 2, 2])
    for _ in range(5):
        out = model(**inputs, image_ids=image_ids, return_loss=True)
        assert out.itm_labels.tolist() == [1] * 6 + [0] * 12
        assert torch.isfinite(out.loss)
    assert model.queue.image_ids[:6].tolist() == image_ids.tolist()


def test_hard_negatives_come_from_other_images(tiny_config, batch):
    model = _model(tiny_config)
    inputs = batch(4)
    image_embeds, _ = model.encode_image(inputs["pixel_values"])
    text_embeds, _ = model.encode_text(inputs["input_ids"], inputs["attention_mask"])
    sim = torch.randn(4, 4)
    positives = torch.eye(4, dtype=torch.bool)
    torch.manual_seed(0)
    logits, labels = model._itm_with_hard_negatives(image_embeds, text_embeds, inputs["attention_mask"], sim, sim.t(),
                                                     positives)
    assert logits.shape == (12, 2) and labels.tolist() == [1] * 4 + [0] * 8


def test_mlm_targets_avoid_the_noise_pool(tiny_config, batch):
    model = _model(tiny_config, mlm_span_fraction=0.3)
    model.train()
    inputs = batch(4)
    exclude = torch.zeros_like(inputs["input_ids"], dtype=torch.bool)
    exclude[:, 1:4] = True
    excluded_tokens = set(inputs["input_ids"][:, 1:4].flatten().tolist())
    for seed in range(5):
        torch.manual_seed(seed)
        out = model(**inputs, mlm_exclude_mask=exclude, return_loss=True)
        targets = out.mlm_labels[out.mlm_labels >= 0]
        assert len(targets) > 0 and torch.isfinite(out.loss_mlm)
        # each row's span lies after position 3; with distinct tokens none of the excluded ones can be a target
        kept = inputs["input_ids"][:, 4:][inputs["attention_mask"][:, 4:].bool()].tolist()
        assert set(targets.tolist()) <= set(kept) | {model.config.sep_token_id}
    assert excluded_tokens  # the test excluded real tokens
    with pytest.raises(ValueError, match="mlm_mask marks tokens that mlm_exclude_mask excludes"):
        model(**inputs, mlm_mask=exclude, mlm_exclude_mask=exclude, return_loss=True)


def test_fusion_encoder_self_attention_is_bidirectional(tiny_config, batch):
    model = _model(tiny_config).eval()
    inputs = batch(2)
    image_embeds, _ = model.encode_image(inputs["pixel_values"])
    ids, mask = inputs["input_ids"].clone(), inputs["attention_mask"]
    text_a, _ = model.encode_text(ids, mask)
    last = int(mask[0].sum()) - 2
    ids[0, last] = (ids[0, last] + 1) % model.config.text_config.vocab_size
    text_b, _ = model.encode_text(ids, mask)
    text_b[:, :last] = text_a[:, :last]  # only the later token differs at the fusion input
    fused_a = model.fuse(text_a, mask, image_embeds)
    fused_b = model.fuse(text_b, mask, image_embeds)
    assert not torch.allclose(fused_a[0, 0], fused_b[0, 0])  # [CLS] sees a later token: not causal


def test_score_pairs_gives_per_pair_itc_loss_and_itm_probability(tiny_config, batch):
    model = _model(tiny_config).eval()
    inputs = batch(4)
    scores = model.score_pairs(inputs["input_ids"], inputs["attention_mask"], pixel_values=inputs["pixel_values"])
    assert scores.itc_loss.shape == scores.itm_score.shape == (4,)
    assert ((scores.itm_score > 0) & (scores.itm_score < 1)).all() and (scores.itc_loss > 0).all()
    image_embeds, _ = model.encode_image(inputs["pixel_values"][1:2])
    single = model.score_pairs(inputs["input_ids"][1:2], inputs["attention_mask"][1:2], image_embeds=image_embeds)
    assert torch.allclose(single.itc_loss, scores.itc_loss[1:2], atol=1e-5)
    assert torch.allclose(single.itm_score, scores.itm_score[1:2], atol=1e-5)
    # queued features of the pair's own image are left out of its ITC negatives
    model.queue.enqueue(model.encode_image(inputs["pixel_values"])[1],
                        model.encode_text(inputs["input_ids"], inputs["attention_mask"])[1], torch.arange(4))
    queued = model.score_pairs(inputs["input_ids"], inputs["attention_mask"], pixel_values=inputs["pixel_values"])
    own = model.score_pairs(inputs["input_ids"], inputs["attention_mask"], pixel_values=inputs["pixel_values"],
                            image_ids=torch.arange(4))
    assert (own.itc_loss < queued.itc_loss).all()
    # the uniform value counts the candidates actually in each softmax: the positive and the queue minus its own entry
    size = model.queue.text_feats.shape[0]
    assert torch.allclose(queued.itc_uniform, torch.full((4,), math.log(1 + size)))
    assert torch.allclose(own.itc_uniform, torch.full((4,), math.log(size)))
    with pytest.raises(ValueError, match="exactly one of pixel_values or image_embeds"):
        model.score_pairs(inputs["input_ids"], inputs["attention_mask"])


def test_generate_fills_the_masked_fragment(tiny_config, batch, processor):
    model = _model(tiny_config).eval()
    inputs = batch(2)
    ids = inputs["input_ids"].clone()
    ids[:, 2] = model.config.mask_token_id
    out = model.generate(pixel_values=inputs["pixel_values"], input_ids=ids, attention_mask=inputs["attention_mask"],
                         max_new_tokens=6, do_sample=False)
    assert out.shape[0] == 2 and 2 <= out.shape[1] <= 7
    assert (out[:, 0] == model.config.cls_token_id).all()
    assert ((out >= 0) & (out < model.config.text_config.vocab_size)).all()
    beams = model.generate(pixel_values=inputs["pixel_values"], input_ids=ids, attention_mask=inputs["attention_mask"],
                           max_new_tokens=4, num_beams=2, do_sample=False)
    assert beams.shape[0] == 2
    with pytest.raises(ValueError, match="exactly one \\[MASK\\] token"):
        model.generate(pixel_values=inputs["pixel_values"], input_ids=inputs["input_ids"])


def test_decoder_learns_to_write_a_fragment(tiny_config, batch):
    """A few steps on one batch: the MLM loss falls and greedy decoding writes the trained fragment."""
    model = _model(tiny_config, itc_weight=0.0, itm_weight=0.0, mlm_span_fraction=1.0)
    inputs = batch(1)
    mlm_mask = torch.zeros_like(inputs["input_ids"], dtype=torch.bool)
    mlm_mask[0, 1:4] = True
    optimizer = torch.optim.AdamW(model.parameters(), lr=3e-3)
    model.train()
    losses = []
    for _ in range(60):
        loss = model(**inputs, mlm_mask=mlm_mask, return_loss=True).loss
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
    assert losses[-1] < losses[0] / 5
    model.eval()
    ids = torch.cat([inputs["input_ids"][:, :1], torch.tensor([[model.config.mask_token_id]]), inputs["input_ids"][:, 4:]], 1)
    out = model.generate(pixel_values=inputs["pixel_values"], input_ids=ids, max_new_tokens=5, do_sample=False)
    assert out[0, 1:4].tolist() == inputs["input_ids"][0, 1:4].tolist()


def test_captioning_generates_from_the_image_alone(tiny_config, batch):
    model = _model(tiny_config, cls=SarKnowlipForConditionalGeneration)
    inputs = batch(2)
    model.train()
    out = model(**inputs, return_loss=True)
    assert torch.isfinite(out.loss_mlm)
    # the whole caption is the target: every content token, then [SEP]
    assert (out.mlm_labels >= 0).sum() == inputs["attention_mask"].sum() - 2 * 2 + 2
    model.eval()
    captions = model.generate(pixel_values=inputs["pixel_values"], max_new_tokens=5)
    assert captions.shape[0] == 2 and captions.shape[1] > 1


@pytest.mark.parametrize("task_type", VQA_TASK_TYPES)
def test_vqa_over_each_task_type(tiny_config, processor, images, task_type):
    model = _model(tiny_config, cls=SarKnowlipForQuestionAnswering)
    train = processor.vqa_inputs(["how many ships are in the harbour", "what is in region two"], task_type,
                                 images=images(2), answers=["three", "a storage tank"])
    model.train()
    out = model(**train, return_loss=True)
    assert torch.isfinite(out.loss)
    answers = processor.tokenizer(["three", "a storage tank"], add_special_tokens=False)["input_ids"]
    targets = [row[row >= 0].tolist() for row in out.mlm_labels]
    assert targets == [ids + [model.config.sep_token_id] for ids in answers]
    model.eval()
    query = processor.vqa_inputs(["how many ships are in the harbour"], task_type, images=images(1))
    answer = model.generate(**query, max_new_tokens=3)
    assert answer.shape[0] == 1 and answer[0, 0] == model.config.cls_token_id


def test_vqa_rejects_unknown_task_types_and_needs_the_answer_span(tiny_config, processor, batch):
    with pytest.raises(ValueError, match="unknown VQA task types \\['ship colour'\\]"):
        processor.vqa_inputs(["what colour"], "ship colour")
    model = _model(tiny_config, cls=SarKnowlipForQuestionAnswering)
    with pytest.raises(ValueError, match="needs mlm_mask marking the answer tokens"):
        model(**batch(2), return_loss=True)


def test_retrieval_reranks_itc_candidates_with_itm(tiny_config, batch):
    model = _model(tiny_config, cls=SarKnowlipForImageTextRetrieval).eval()
    inputs = batch(5)
    out = model.retrieve(inputs["pixel_values"], inputs["input_ids"], inputs["attention_mask"], k=3, batch_size=2)
    assert out.itc_similarity.shape == (5, 5)
    assert out.i2t_indices.shape == out.i2t_scores.shape == out.t2i_indices.shape == (5, 3)
    assert (out.i2t_scores[:, :-1] >= out.i2t_scores[:, 1:]).all()
    for row, candidates in enumerate(out.i2t_indices):  # the candidates are the ITC top-3, re-ordered
        assert set(candidates.tolist()) == set(out.itc_similarity[row].topk(3).indices.tolist())
    image_embeds, _ = model.encode_image(inputs["pixel_values"][:1])
    text_embeds, _ = model.encode_text(inputs["input_ids"], inputs["attention_mask"])
    best = out.i2t_indices[0, 0]
    logit = model.itm_logits(image_embeds, text_embeds[best:best + 1], inputs["attention_mask"][best:best + 1])[0, 1]
    assert torch.allclose(logit, out.i2t_scores[0, 0], atol=1e-5)


def test_image_classification_head_fine_tunes_from_a_knowlip_checkpoint(tiny_config, batch, tmp_path):
    pretrained = _model(tiny_config)
    pretrained.save_pretrained(tmp_path)
    classifier = SarKnowlipForImageClassification.from_pretrained(tmp_path, num_labels=3)
    assert torch.equal(classifier.vision_model.embeddings.patch_embeddings.projection.weight,
                       pretrained.vision_model.embeddings.patch_embeddings.projection.weight)
    inputs = batch(4)
    out = classifier(inputs["pixel_values"], labels=torch.tensor([0, 1, 2, 1]))
    assert out.logits.shape == (4, 3) and torch.isfinite(out.loss)
    out.loss.backward()
    assert _grad_norm(classifier.vision_model) > 0 and _grad_norm(classifier.classifier) > 0


def test_position_embeddings_are_interpolated_on_the_patch_grid():
    """A plane a*row + b*col over the 4 x 4 grid stays that plane (rescaled) on 8 x 8; the class position is kept."""
    rows, cols = torch.meshgrid(torch.arange(4.0), torch.arange(4.0), indexing="ij")
    plane = torch.stack([rows, cols], dim=-1).reshape(1, 16, 2)
    embeddings = torch.cat([torch.tensor([[[7.0, -7.0]]]), plane], dim=1)
    resized = interpolate_position_embeddings(embeddings, 8)
    assert resized.shape == (1, 65, 2) and torch.equal(resized[:, 0], embeddings[:, 0])
    grid = resized[0, 1:].reshape(8, 8, 2)
    assert torch.all(grid[1:, :, 0] >= grid[:-1, :, 0]) and torch.all(grid[:, 1:, 1] >= grid[:, :-1, 1])
    assert torch.allclose(grid[:, :, 0], grid[:, :1, 0].expand(8, 8)) and grid[0, 0, 0] < 0.5 < 2.5 < grid[-1, 0, 0]
    assert torch.equal(interpolate_position_embeddings(embeddings, 4), embeddings)


@pytest.mark.parametrize("cls", [SarKnowlipModel, SarKnowlipForQuestionAnswering])
def test_a_model_takes_a_larger_image_size_and_reloads_with_it(tiny_config, processor, images, cls, tmp_path):
    model = _model(tiny_config, cls).eval()
    side = model.config.vision_config.image_size
    assert torch.equal(model.with_image_size(side).state_dict()["vision_model.embeddings.position_embeddings"],
                       model.state_dict()["vision_model.embeddings.position_embeddings"])
    larger = model.with_image_size(2 * side).eval()
    assert larger.config.vision_config.image_size == 2 * side and model.config.vision_config.image_size == side
    pixels = processor.image_processor(images(2), size=2 * side, return_tensors="pt")["pixel_values"]
    with torch.no_grad():
        tokens = larger.vision_model(pixel_values=pixels).last_hidden_state
        assert tokens.shape[1] == 1 + (2 * side // model.config.vision_config.patch_size) ** 2
        larger.save_pretrained(tmp_path)
        again = cls.from_pretrained(tmp_path).eval()
        assert torch.equal(again.vision_model(pixel_values=pixels).last_hidden_state, tokens)
    with pytest.raises(ValueError, match="multiple of the ViT patch size"):
        model.with_image_size(side + 1)


def test_activation_checkpointing_gives_the_same_gradients(tiny_config, batch):
    inputs = batch(3)
    grads = []
    for checkpointing in (False, True):
        model = _model(tiny_config, itm_weight=0.0).eval()  # eval: no dropout; ITM sampling is random
        if checkpointing:
            model.activation_checkpointing_enable({"use_reentrant": False})
        torch.manual_seed(0)
        model(**inputs, return_loss=True).loss.backward()
        grads.append(model.vision_model.embeddings.patch_embeddings.projection.weight.grad.clone())
    assert torch.allclose(grads[0], grads[1], atol=1e-5)


def _first_feature_scorer(tiny_config, bias: float):
    """A VQA model on a 6 x 6 patch grid whose region scorer reads feature 0 of the patch tokens, plus `bias`."""
    model = _model(tiny_config, cls=SarKnowlipForQuestionAnswering, vqa_region_weight=1.0,
                   vision_config={"image_size": 96})
    width = model.config.vision_config.hidden_size
    with torch.no_grad():
        model.region_head.weight.copy_(torch.eye(width)[:1])
        model.region_head.bias.fill_(bias)
    return model, width


def test_the_vqa_region_scorer_reads_the_grid_row_by_row(tiny_config):
    """A target feature in one patch of a 6 x 6 grid lights up exactly the 3 x 3 region holding that patch."""
    model, width = _first_feature_scorer(tiny_config, bias=0.0)
    for row, col, region in [(0, 5, 3), (3, 0, 4), (5, 5, 9)]:
        tokens = torch.zeros(1, 1 + 36, width)
        tokens[0, 1 + row * 6 + col, 0] = 5.0
        logits = model.region_logits(tokens)[0]
        assert logits.argmax() == region - 1 and logits[region - 1] == 5.0 and logits.count_nonzero() == 1


def test_position_answers_list_the_scored_regions_or_the_best_one(tiny_config):
    """Regions above logit 0, ascending, in the VQA sets' format; the best region where none is above 0."""
    model, width = _first_feature_scorer(tiny_config, bias=-1.0)
    tokens = torch.zeros(2, 1 + 36, width)
    tokens[0, 1 + 5 * 6 + 5, 0] = 5.0  # region 9
    tokens[0, 1 + 0 * 6 + 0, 0] = 3.0  # region 1
    tokens[1, 1 + 3 * 6 + 0, 0] = 0.5  # region 4, below the bias: no region is above 0
    assert model.answer_regions(image_embeds=tokens) == ["1, 9", "4"]


def test_the_vqa_region_loss_adds_only_for_labelled_images(tiny_config, processor, images, tmp_path):
    model = _model(tiny_config, cls=SarKnowlipForQuestionAnswering, vqa_region_weight=0.5).eval()
    inputs = processor.vqa_inputs(["where are the ships", "where are the ships", "what type of target"],
                                  ["target position", "target position", "target recognition"], images=images(3),
                                  answers=["1, 5", "9", "BMP2"])
    labels = torch.tensor([[1.0, 0, 0, 0, 1, 0, 0, 0, 0], [0.0] * 8 + [1.0], [-1.0] * 9])  # the chip has no regions

    def losses(**extra):
        torch.manual_seed(1)  # the same ITM hard negatives; eval mode leaves momentum encoders and queue alone
        return model(**inputs, return_loss=True, **extra)

    with torch.no_grad():
        grounded, plain = losses(region_labels=labels), losses()
        logits = model.region_logits(model.vision_model(pixel_values=inputs["pixel_values"][:2]).last_hidden_state)
    expected = torch.nn.functional.binary_cross_entropy_with_logits(logits, labels[:2])
    assert torch.allclose(grounded.loss_region, expected) and plain.loss_region is None
    assert torch.allclose(grounded.loss, plain.loss + 0.5 * expected)
    grounded = losses(region_labels=labels)
    grounded.loss.backward()
    assert _grad_norm(model.region_head) > 0 and _grad_norm(model.vision_model) > 0
    model.save_pretrained(tmp_path)
    again = SarKnowlipForQuestionAnswering.from_pretrained(tmp_path)
    assert torch.equal(again.region_head.weight, model.region_head.weight)
    assert _model(tiny_config, cls=SarKnowlipForQuestionAnswering).region_head is None  # off by default (the paper)
