"""SCIO's decision rules (paper 3.4), on per-pair ITC losses and ITM match scores.

Where the paper's text (eqs. 10-15) and its Algorithm 1 differ, we follow the equations:
- Screening: Algorithm 1 writes ΔL = L(T) - L(T \\ t_i) > 0, the same test as eq. 10's ΔL = L(t^(-j)) - L(t) < 0.
  Algorithm 1 then compares ITM *losses* of the whole filtered text T'; we use eq. 11, the ITM *score* per fragment.
- Reconstruction: Algorithm 1 compares T_filled with T' (the text without the noise); eqs. 14-15 compare the
  reconstructed text with the text t_i before reconstruction, which is what we do.
Ties (Δ = 0) are not improvements: both rules need strict inequalities, as written in the paper.

Our additions (docs/RESULTS.md, SCIO noise benchmark):
- Pair screening (`screen_pairs`): eqs. 10-11 remove one sub-text at a time, so a text whose sub-texts are all wrong
  (an image given another image's whole caption list) is not found: removing one wrong caption of five leaves four.
  A pair is flagged as a whole when its ITC loss is above its uniform value (ln of the number of candidates: the image
  finds its text less likely than chance, the default), when the ITM head calls it a mismatch (match probability
  below a threshold; BLIP's CapFilt filters that way), or when its image ranks its text low among the queued texts.
- A margin on eq. 10 (`margin`, nats): with template captions every sub-text says the same thing, and removing a
  correct one moves the ITC loss by a few tenths of a nat either way; eq. 11's ITM score rises for nearly any removal
  (the ITM head prefers shorter texts). With the paper's strict `ΔL_ITC < 0` a third of the clean MSTAR texts had a
  sub-text flagged; `ΔL_ITC < -margin` asks the removal to help by more than that spread (0: the paper's rule).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch


@dataclass
class ScreeningDecision:
    """delta_itc (eq. 10), delta_itm (eq. 11); candidate: ΔL_ITC < 0; noise: candidate and ΔITM > 0."""

    delta_itc: torch.Tensor
    delta_itm: torch.Tensor
    candidate: torch.Tensor
    noise: torch.Tensor


@dataclass
class ReconstructionDecision:
    """delta_itc (eq. 14), delta_itm (eq. 15); accepted: ΔL_ITC < 0 and ΔITM > 0."""

    delta_itc: torch.Tensor
    delta_itm: torch.Tensor
    accepted: torch.Tensor


def screen(itc_full: torch.Tensor, itm_full: torch.Tensor, itc_removed: torch.Tensor,
           itm_removed: torch.Tensor, margin: float = 0.0) -> ScreeningDecision:
    """Eqs. 10-11: removing fragment p_j lowers the ITC loss by more than `margin` (candidate; the paper: by any
    amount, margin 0) and raises the ITM score (noise)."""
    delta_itc = itc_removed.float() - itc_full.float()
    delta_itm = itm_removed.float() - itm_full.float()
    candidate = delta_itc < -margin
    return ScreeningDecision(delta_itc, delta_itm, candidate, candidate & (delta_itm > 0))


def screen_pairs(itc_excess: torch.Tensor | None = None, itm_full: torch.Tensor | None = None,
                 itm_threshold: float | None = None, itc_rank: torch.Tensor | None = None,
                 rank_threshold: float | None = None) -> torch.Tensor:
    """Pair screening (our addition: eqs. 10-11 cannot find a wholly wrong text, removing one wrong sub-text of
    five leaves four): a pair is flagged when its full text's ITC loss is above its uniform value (`itc_excess`, the
    loss minus ln of the candidates, > 0), when its ITM match probability is below `itm_threshold`, or when its image
    ranks its own full text below the `rank_threshold` share of the queued texts. Bool per pair; a rule given None is
    off."""
    rules = [scores.float() < threshold for scores, threshold in ((itm_full, itm_threshold), (itc_rank, rank_threshold))
             if threshold is not None]
    if itc_excess is not None:
        rules.append(itc_excess.float() > 0)
    if not rules:
        raise ValueError("screen_pairs needs itc_excess, itm_threshold or rank_threshold")
    return torch.stack(rules).any(dim=0)


def accept_reconstruction(itc_before: torch.Tensor, itm_before: torch.Tensor, itc_after: torch.Tensor,
                          itm_after: torch.Tensor) -> ReconstructionDecision:
    """Eqs. 14-15: keep the regenerated fragment only if the ITC loss falls and the ITM score rises."""
    delta_itc = itc_after.float() - itc_before.float()
    delta_itm = itm_after.float() - itm_before.float()
    return ReconstructionDecision(delta_itc, delta_itm, (delta_itc < 0) & (delta_itm > 0))


__all__ = ["ReconstructionDecision", "ScreeningDecision", "accept_reconstruction", "screen", "screen_pairs"]
