import pytest
import torch
import torch.nn.functional as F

from modeling_sarclip import SarclipModel, contrastive_loss


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
    aligned = torch.eye(3) * 10
    assert contrastive_loss(aligned) < contrastive_loss(aligned.flip(0))


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
