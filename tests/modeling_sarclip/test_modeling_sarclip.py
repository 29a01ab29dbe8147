import pytest
import torch
import torch.nn.functional as F

from modeling_sarclip import SarclipConfig, SarclipModel
from modeling_sarclip.loss_sarclip import contrastive_loss


def _ids(batch, length=12, eos=49407, seed=0):
    """Random token ids with a start token, an end-of-text token at varying positions and zero padding."""
    g = torch.Generator().manual_seed(seed)
    ids = torch.zeros(batch, length, dtype=torch.long)
    for i in range(batch):
        n = 3 + i % (length - 3)
        ids[i, 0] = 49406
        ids[i, 1:n] = torch.randint(1, 49000, (n - 1,), generator=g)
        ids[i, n] = eos
    return ids


@pytest.fixture(params=["vit", "resnet"])
def model_and_inputs(request, tiny_config):
    torch.manual_seed(0)
    config = tiny_config(request.param)
    model = SarclipModel(config).eval()
    size = config.vision_config.image_size
    return model, _ids(4), torch.randn(4, 3, size, size)


def test_forward_outputs_and_loss(model_and_inputs):
    model, ids, pixels = model_and_inputs
    out = model(input_ids=ids, pixel_values=pixels, return_loss=True)
    assert out.logits_per_image.shape == (4, 4)
    torch.testing.assert_close(out.logits_per_text, out.logits_per_image.t())
    torch.testing.assert_close(out.image_embeds.norm(dim=-1), torch.ones(4))
    expected = model.logit_scale.exp() * out.image_embeds @ out.text_embeds.t()
    torch.testing.assert_close(out.logits_per_image, expected)
    labels = torch.arange(4)
    manual = (F.cross_entropy(expected, labels) + F.cross_entropy(expected.t(), labels)) / 2
    torch.testing.assert_close(out.loss, manual)
    assert model(input_ids=ids, pixel_values=pixels).loss is None


def test_logit_scale_init_is_clip_temperature(tiny_config):
    model = SarclipModel(tiny_config())
    assert model.logit_scale.exp().item() == pytest.approx(1 / 0.07, rel=1e-5)


def test_contrastive_loss_prefers_matching_pairs():
    embeds = F.normalize(torch.randn(3, 8, generator=torch.Generator().manual_seed(0)), dim=-1)
    scale = torch.tensor(10.0)
    assert contrastive_loss(embeds, embeds, scale) < contrastive_loss(embeds, embeds.flip(0), scale)


def test_multi_positive_loss_equals_infonce_for_distinct_ids_and_differs_for_repeats():
    g = torch.Generator().manual_seed(1)
    image, text = (F.normalize(torch.randn(6, 8, generator=g), dim=-1) for _ in range(2))
    scale = torch.tensor(20.0)
    plain = contrastive_loss(image, text, scale)
    torch.testing.assert_close(contrastive_loss(image, text, scale, torch.tensor([5, 3, 9, 0, 1, 2])), plain)
    repeated = torch.tensor([0, 1, 0, 2, 1, 0])
    grouped = contrastive_loss(image, text, scale, repeated)
    assert not torch.allclose(grouped, plain)
    # by hand: each row's target is uniform over the pairs sharing its id
    positives = (repeated[:, None] == repeated[None, :]).float()
    targets = positives / positives.sum(1, keepdim=True)
    logits = scale * image @ text.t()
    manual = (F.cross_entropy(logits, targets) + F.cross_entropy(logits.t(), targets)) / 2
    torch.testing.assert_close(grouped, manual)
    # two pairs with the same caption: a gradient step of plain InfoNCE pushes their embeddings apart, one of the
    # multi-positive loss pulls them together
    def cosine_after_step(group_ids):
        embeds = F.normalize(torch.tensor([[1.0, 0.0], [0.95, 0.3], [-0.2, 1.0]]), dim=-1).requires_grad_()
        contrastive_loss(embeds, embeds, scale, group_ids).backward()
        moved = F.normalize(embeds.detach() - 0.01 * embeds.grad, dim=-1)
        return (moved[0] @ moved[1]).item()

    start = (F.normalize(torch.tensor([1.0, 0.0]), dim=0) @ F.normalize(torch.tensor([0.95, 0.3]), dim=0)).item()
    assert cosine_after_step(None) < start < cosine_after_step(torch.tensor([0, 0, 1]))


def test_forward_group_ids_reach_the_loss(model_and_inputs):
    model, ids, pixels = model_and_inputs
    groups = torch.tensor([0, 1, 0, 2])
    out = model(input_ids=ids, pixel_values=pixels, return_loss=True, group_ids=groups)
    torch.testing.assert_close(out.loss, contrastive_loss(out.image_embeds, out.text_embeds, out.logit_scale, groups))


def test_class_prompts_give_the_zero_shot_classifiers_cross_entropy(model_and_inputs):
    model, ids, pixels = model_and_inputs
    prompts, labels = _ids(3, seed=1), torch.tensor([2, 0, 1, 2])
    out = model(input_ids=ids, pixel_values=pixels, return_loss=True, class_input_ids=prompts, labels=labels)
    classes = F.normalize(model.get_text_features(prompts).pooler_output, dim=-1)
    expected = F.cross_entropy(out.logit_scale * out.image_embeds @ classes.t(), labels)
    torch.testing.assert_close(out.prompt_loss, expected)
    plain = model(input_ids=ids, pixel_values=pixels, return_loss=True)
    torch.testing.assert_close(out.loss, plain.loss)  # reported beside the contrastive loss, not added to it
    assert plain.prompt_loss is None
    with pytest.raises(ValueError, match="class_input_ids needs labels"):
        model(input_ids=ids, pixel_values=pixels, class_input_ids=prompts)


def test_return_dict_false_gives_a_tuple(model_and_inputs):
    model, ids, pixels = model_and_inputs
    as_dict = model(input_ids=ids, pixel_values=pixels, return_loss=True)
    as_tuple = model(input_ids=ids, pixel_values=pixels, return_loss=True, return_dict=False)
    assert isinstance(as_tuple, tuple)
    # CLIPModel's order for the fields CLIPOutput has, then logit_scale
    from transformers.models.clip.modeling_clip import CLIPOutput

    clip_fields = list(CLIPOutput.__dataclass_fields__)
    assert list(type(as_dict).__dataclass_fields__) == [*clip_fields, "logit_scale", "prompt_loss"]
    for index, name in enumerate(clip_fields[:5]):
        torch.testing.assert_close(as_tuple[index], getattr(as_dict, name))
    assert len(as_tuple) == 8 and torch.equal(as_tuple[-1], as_dict.logit_scale)
    features = model.get_image_features(pixel_values=pixels, return_dict=False)
    assert isinstance(features, tuple)
    torch.testing.assert_close(features[1], as_dict.vision_model_output.pooler_output)


def test_output_attentions(model_and_inputs):
    model, ids, pixels = model_and_inputs
    out = model(input_ids=ids, pixel_values=pixels, output_attentions=True)
    text = out.text_model_output.attentions
    assert len(text) == model.config.text_config.layers
    heads, seq = model.config.text_config.heads, ids.shape[1]
    assert text[0].shape == (4, heads, seq, seq)
    torch.testing.assert_close(text[0].sum(-1), torch.ones(4, heads, seq))
    assert torch.all(text[0][..., 0, 1:] == 0)  # causal: the first token sees only itself
    plain = model(input_ids=ids, pixel_values=pixels)
    torch.testing.assert_close(out.logits_per_image, plain.logits_per_image)  # the eager path gives the same math
    vision = out.vision_model_output.attentions
    if model.config.vision_config.is_resnet:
        assert vision is None
    else:
        assert len(vision) == model.config.vision_config.layers and vision[0].shape[1] == model.config.vision_config.num_heads


def test_pixel_values_alone_give_image_embeddings(model_and_inputs):
    model, _, pixels = model_and_inputs
    out = model(pixel_values=pixels)
    assert out.logits_per_image is None and out.text_embeds is None
    expected = F.normalize(model.get_image_features(pixel_values=pixels).pooler_output, dim=-1)
    torch.testing.assert_close(out.image_embeds, expected)
    with pytest.raises(ValueError, match="return_loss=True needs input_ids"):
        model(pixel_values=pixels, return_loss=True)


def test_config_answers_to_transformers_standard_names():
    config = SarclipConfig.from_preset("ViT-B-32")
    assert config.projection_dim == config.embed_dim == 512
    vision, text = config.vision_config, config.text_config
    assert (vision.hidden_size, vision.num_hidden_layers, vision.num_attention_heads) == (768, 12, 12)
    assert (text.hidden_size, text.num_hidden_layers, text.num_attention_heads) == (512, 12, 8)
    assert text.max_position_embeddings == 77
    text.hidden_size = 256  # writes go to the open_clip name
    assert text.width == 256 and "hidden_size" not in text.to_dict()


def test_padding_after_eos_does_not_change_text_embedding(model_and_inputs):
    model, ids, _ = model_and_inputs
    short = model.get_text_features(ids[:, :8][:1]).pooler_output  # row 0 ends at position 3
    padded = ids[:1].clone()
    padded[0, 4:] = 7  # garbage after the end-of-text token
    torch.testing.assert_close(model.get_text_features(padded).pooler_output, short)


def test_text_without_eos_or_too_long_raises(model_and_inputs):
    model, ids, _ = model_and_inputs
    with pytest.raises(ValueError, match="end-of-text token"):
        model.get_text_features(torch.full((1, 5), 320))
    with pytest.raises(ValueError, match="exceeds the model's context_length"):
        model.get_text_features(torch.cat([ids[:1], torch.zeros(1, 80, dtype=torch.long)], 1))


def test_eager_and_sdpa_agree(model_and_inputs):
    model, ids, pixels = model_and_inputs
    sdpa = model(input_ids=ids, pixel_values=pixels).logits_per_image
    model.set_attn_implementation("eager")
    eager = model(input_ids=ids, pixel_values=pixels).logits_per_image
    torch.testing.assert_close(sdpa, eager, atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("attention", ["sdpa", "eager"])
def test_pooled_only_gives_the_same_embeddings_loss_and_gradients(model_and_inputs, attention):
    """The last block at the pooled token alone (the class token; each text's end-of-text token, which sees only the
    keys up to it): in float64 the embeddings, the loss and every gradient equal the full forward's to rounding."""
    model, ids, pixels = model_and_inputs
    model.set_attn_implementation(attention)
    model.to(torch.float64).train()

    def run(pooled_only):
        model.zero_grad()
        out = model(input_ids=ids, pixel_values=pixels.double(), return_loss=True, pooled_only=pooled_only)
        out.loss.backward()
        return out, {n: p.grad.clone() for n, p in model.named_parameters() if p.grad is not None}

    (full, full_grads), (pooled, pooled_grads) = run(False), run(True)
    for field in ("text_embeds", "image_embeds", "loss"):
        torch.testing.assert_close(getattr(pooled, field), getattr(full, field), rtol=0, atol=1e-12)
    assert pooled_grads.keys() == full_grads.keys()
    for name, grad in full_grads.items():
        torch.testing.assert_close(pooled_grads[name], grad, rtol=0, atol=1e-12, msg=name)
    assert pooled.text_model_output.last_hidden_state.shape == (4, 1, model.config.text_config.width)
    if not model.config.vision_config.is_resnet:
        torch.testing.assert_close(pooled.vision_model_output.last_hidden_state[:, 0],
                                   full.vision_model_output.last_hidden_state[:, 0], rtol=0, atol=1e-12)


def test_pooled_only_applies_lora_adapters_on_the_attention_projections(model_and_inputs):
    """The last block's qkv goes through the module: a peft LoRA on `qkv` (trained, B non-zero) counts in both
    paths."""
    from peft import LoraConfig, get_peft_model

    model, ids, pixels = model_and_inputs
    lora = get_peft_model(model, LoraConfig(r=2, target_modules=["qkv"], init_lora_weights=False))
    with torch.no_grad():
        full = lora(input_ids=ids, pixel_values=pixels)
        pooled = lora(input_ids=ids, pixel_values=pixels, pooled_only=True)
        with lora.disable_adapter():
            base = lora(input_ids=ids, pixel_values=pixels, pooled_only=True)
    torch.testing.assert_close(pooled.text_embeds, full.text_embeds, rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(pooled.image_embeds, full.image_embeds, rtol=1e-5, atol=1e-6)
    assert not torch.allclose(base.text_embeds, full.text_embeds, atol=1e-4)  # the adapters do change the result


def test_pooled_only_refuses_to_output_hidden_states(model_and_inputs):
    model, ids, _ = model_and_inputs
    with pytest.raises(ValueError, match="pooled_only=True returns the pooled state only"):
        model.get_text_features(ids, output_hidden_states=True, pooled_only=True)


def test_gradient_checkpointing_gives_same_loss_and_gradients(tiny_config):
    torch.manual_seed(0)
    model = SarclipModel(tiny_config()).train()
    ids, pixels = _ids(4), torch.randn(4, 3, 32, 32)

    def loss_and_grads():
        model.zero_grad()
        loss = model(input_ids=ids, pixel_values=pixels, return_loss=True).loss
        loss.backward()
        return loss.detach(), {n: p.grad.clone() for n, p in model.named_parameters()}

    loss, grads = loss_and_grads()
    model.activation_checkpointing_enable({"use_reentrant": False})
    assert model.text_model.encoder.layers[0].gradient_checkpointing
    ckpt_loss, ckpt_grads = loss_and_grads()
    torch.testing.assert_close(ckpt_loss, loss)
    for name, grad in grads.items():
        torch.testing.assert_close(ckpt_grads[name], grad, msg=name)


def test_training_step_reduces_loss(model_and_inputs):
    model, ids, pixels = model_and_inputs
    model.train()
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-3)
    losses = []
    for _ in range(15):
        loss = model(input_ids=ids, pixel_values=pixels, return_loss=True).loss
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
    assert losses[-1] < 0.5 * losses[0]


def test_save_and_load_give_identical_outputs(tmp_path, model_and_inputs):
    model, ids, pixels = model_and_inputs
    model.save_pretrained(tmp_path)
    assert (tmp_path / "model.safetensors").is_file()
    loaded = SarclipModel.from_pretrained(tmp_path).eval()
    a = model(input_ids=ids, pixel_values=pixels)
    b = loaded(input_ids=ids, pixel_values=pixels)
    torch.testing.assert_close(a.logits_per_image, b.logits_per_image)


def test_bf16_forward_runs(model_and_inputs):
    model, ids, pixels = model_and_inputs
    with torch.autocast("cpu", dtype=torch.bfloat16):
        out = model(input_ids=ids, pixel_values=pixels, return_loss=True)
    assert torch.isfinite(out.loss)


SAR_CAPTIONS = [
    "a SAR image of a T-72 main battle tank.",
    "ship",
    "In this SAR image, there are 3 aircraft parked near the upper left of the apron, next to two storage tanks.",
]


def test_padding_to_the_longest_text_gives_the_77_token_embeddings(tiny_config, clip_tokenizer):
    """Causal attention and end-of-text pooling: the padded tail never reaches the embedding. In float64 the two
    layouts agree to 1e-12 (the same math; float32 differs only by rounding of differently shaped products)."""
    longest = clip_tokenizer(SAR_CAPTIONS, return_tensors="pt")["input_ids"]
    fixed = clip_tokenizer(SAR_CAPTIONS, padding="max_length", return_tensors="pt")["input_ids"]
    assert longest.shape[1] < 40 and fixed.shape[1] == 77
    torch.manual_seed(0)
    model = SarclipModel(tiny_config()).eval()
    for dtype, atol in ((torch.float64, 1e-12), (torch.float32, 1e-5)):
        model.to(dtype)
        with torch.no_grad():
            torch.testing.assert_close(model.get_text_features(longest).pooler_output,
                                       model.get_text_features(fixed).pooler_output, rtol=0, atol=atol)


@pytest.mark.parametrize("kind", ["vit", "resnet"])
@pytest.mark.parametrize("pooled_only", [False, True])
def test_forward_with_loss_compiles_without_graph_breaks(tiny_config, kind, pooled_only):
    """fullgraph=True fails on any graph break; the end-of-text check must not read tensor values when compiled."""
    torch.manual_seed(0)
    config = tiny_config(kind)
    model = SarclipModel(config).train()
    size = config.vision_config.image_size
    ids, pixels = _ids(4), torch.randn(4, 3, size, size)
    compiled = torch.compile(model, fullgraph=True, backend="eager")
    loss = compiled(input_ids=ids, pixel_values=pixels, return_loss=True, pooled_only=pooled_only).loss
    eager = model(input_ids=ids, pixel_values=pixels, return_loss=True, pooled_only=pooled_only).loss
    torch.testing.assert_close(loss, eager, rtol=0, atol=0)
    torch._dynamo.reset()
