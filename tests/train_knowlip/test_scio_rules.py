import torch

from train.knowlip.scio_rules import accept_reconstruction, screen


def test_screening_rule_eqs_10_11():
    # fragments: removal helps ITC and ITM (noise) | helps ITC, hurts ITM (candidate only) | hurts ITC | a tie
    itc_full, itm_full = torch.tensor([2.0] * 4), torch.tensor([0.6] * 4)
    itc_removed = torch.tensor([1.5, 1.8, 2.4, 2.0])
    itm_removed = torch.tensor([0.7, 0.5, 0.9, 0.6])
    decision = screen(itc_full, itm_full, itc_removed, itm_removed)
    assert torch.allclose(decision.delta_itc, torch.tensor([-0.5, -0.2, 0.4, 0.0]))
    assert torch.allclose(decision.delta_itm, torch.tensor([0.1, -0.1, 0.3, 0.0]))
    assert decision.candidate.tolist() == [True, True, False, False]
    assert decision.noise.tolist() == [True, False, False, False]
    # with a margin the removal must lower the loss by more than it: only the -0.5 fragment stays a candidate
    strict = screen(itc_full, itm_full, itc_removed, itm_removed, margin=0.3)
    assert strict.candidate.tolist() == [True, False, False, False]
    assert strict.noise.tolist() == [True, False, False, False]
    assert screen(itc_full, itm_full, itc_removed, itm_removed, margin=0.5).noise.tolist() == [False] * 4


def test_reconstruction_rule_eqs_14_15():
    # accepted | ITC falls but ITM falls | ITM rises but ITC rises | no change
    decision = accept_reconstruction(torch.tensor([3.0] * 4), torch.tensor([0.4] * 4),
                                     torch.tensor([2.5, 2.5, 3.5, 3.0]), torch.tensor([0.6, 0.3, 0.9, 0.4]))
    assert decision.accepted.tolist() == [True, False, False, False]
    assert torch.allclose(decision.delta_itc, torch.tensor([-0.5, -0.5, 0.5, 0.0]))
