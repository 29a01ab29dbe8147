import pytest
import torch
import torch.nn.functional as F
from torch import nn

from modeling_knowlip.losses_knowlip import momentum_update, pairwise_itc_loss, sample_hard_negatives
from modeling_knowlip.losses_knowlip import itc_targets, lm_loss, positive_mask, soft_contrastive_loss


def _unit(*shape, seed=0):
    return F.normalize(torch.randn(*shape, generator=torch.Generator().manual_seed(seed)), dim=-1)


def test_soft_contrastive_loss_with_one_hot_targets_is_infonce():
    logits = torch.randn(5, 9)
    targets = torch.eye(5, 9)
    assert torch.allclose(soft_contrastive_loss(logits, targets), F.cross_entropy(logits, torch.arange(5)))


def test_momentum_distillation_targets_mix_alpha():
    positives = positive_mask(torch.tensor([0, 0, 1]), torch.tensor([0, 0, 1, 2, -1]), 3, 5, torch.device("cpu"))
    assert positives.tolist()[0] == [True, True, False, False, False]
    momentum_logits = torch.randn(3, 5)
    hard = itc_targets(positives, momentum_logits, alpha=0.0)
    assert torch.allclose(hard[0], torch.tensor([0.5, 0.5, 0.0, 0.0, 0.0]))  # mass shared by the image's 2 texts
    mixed = itc_targets(positives, momentum_logits, alpha=0.4)
    assert torch.allclose(mixed, 0.4 * momentum_logits.softmax(1) + 0.6 * hard)
    assert torch.allclose(mixed.sum(1), torch.ones(3))


def test_pairwise_itc_loss_does_not_depend_on_the_rest_of_the_batch():
    image, text = _unit(6, 8, seed=1), _unit(6, 8, seed=2)
    image_bank, text_bank = _unit(20, 8, seed=3), _unit(20, 8, seed=4)
    temp = torch.tensor(0.07)
    full = pairwise_itc_loss(image, text, image_bank, text_bank, temp)
    assert full.shape == (6,)
    assert torch.allclose(full[2:4], pairwise_itc_loss(image[2:4], text[2:4], image_bank, text_bank, temp))
    # Eq. 4, symmetric: the positive against the bank, in both directions.
    i2t = torch.cat([(image[0] * text[0]).sum()[None], text_bank @ image[0]]) / temp
    t2i = torch.cat([(image[0] * text[0]).sum()[None], image_bank @ text[0]]) / temp
    expected = -(i2t.log_softmax(0)[0] + t2i.log_softmax(0)[0]) / 2
    assert torch.allclose(full[0], expected)
    # excluded bank rows are not negatives: excluding all but one equals a one-row bank
    exclude = torch.ones(1, 20, dtype=torch.bool)
    exclude[0, 5] = False
    assert torch.allclose(pairwise_itc_loss(image[:1], text[:1], image_bank, text_bank, temp, exclude),
                          pairwise_itc_loss(image[:1], text[:1], image_bank[5:6], text_bank[5:6], temp))
    # a text closer to its image has a lower loss
    assert pairwise_itc_loss(image[:1], image[:1], image_bank, text_bank, temp) < full[0]


def test_hard_negatives_never_pick_a_positive_and_follow_similarity():
    torch.manual_seed(0)
    image_ids = torch.tensor([0, 0, 1, 2, 3, 3])
    positives = image_ids[:, None] == image_ids[None, :]
    similarity = torch.randn(6, 6) * 5
    for _ in range(200):
        picked = sample_hard_negatives(similarity, positives)
        assert not positives[torch.arange(6), picked].any()
    # a non-positive column that is far more similar than the others is (almost surely) the one drawn
    similarity = torch.zeros(4, 4)
    similarity[:, 2] = 50.0
    similarity[2, 1] = 50.0
    picked = sample_hard_negatives(similarity, torch.eye(4, dtype=torch.bool))
    assert picked.tolist() == [2, 2, 1, 2]


def test_hard_negative_mining_needs_a_negative():
    with pytest.raises(ValueError, match="at least one in-batch negative"):
        sample_hard_negatives(torch.zeros(2, 2), torch.ones(2, 2, dtype=torch.bool))


def test_momentum_update_is_an_ema():
    online, momentum = nn.Linear(3, 2), nn.Linear(3, 2)
    before = momentum.weight.detach().clone()
    momentum_update(online, momentum, 0.9)
    assert torch.allclose(momentum.weight, 0.9 * before + 0.1 * online.weight.detach())
    momentum_update(online, momentum, 0.0)
    assert torch.equal(momentum.weight, online.weight)


def test_lm_loss_ignores_unlabelled_positions():
    logits = torch.randn(2, 3, 7, requires_grad=True)
    labels = torch.tensor([[1, -100, -100], [-100, 4, 5]])
    expected = F.cross_entropy(logits[[0, 1, 1], [0, 1, 2]], torch.tensor([1, 4, 5]))
    assert torch.allclose(lm_loss(logits, labels), expected)
    empty = lm_loss(logits, torch.full((2, 3), -100))
    assert empty.item() == 0.0 and empty.requires_grad
