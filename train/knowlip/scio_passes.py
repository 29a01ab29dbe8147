"""SCIO's two text passes (paper 3.4): screening (stage 2, eqs. 10-11) and reconstruction (stage 3, eqs. 12-15).

Both passes work on texts given as sub-text lists and take the model through two callables, so the same code runs
with SAR-KnowLIP (`ModelTextOps`) or with any other scorer:
- `score(rows, texts) -> (itc_excess, itm_score, itc_rank)`: per-pair ITC loss above its uniform value (the loss
  minus ln of its candidates: > 0 when the image finds the text less likely than chance; differences, eqs. 10 and
  14, are those of the loss), ITM match probability and ITC rank among the queued texts of text k with image
  `rows[k]` of the current image batch;
- `fill(rows, masked_texts) -> fragments`: the decoder's text for the one [MASK] of each text (eq. 13).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field

import torch

from .scio_rules import accept_reconstruction, screen, screen_pairs
from .scio_text import encode_subtexts, replaced, without

Texts = list[list[str | None]]
Scorer = Callable[[list[int], Texts], tuple[torch.Tensor, torch.Tensor, torch.Tensor]]
Filler = Callable[[list[int], Texts], list[str]]


@dataclass
class ScreeningResult:
    """Per text and sub-text: noise flag, ΔL_ITC (eq. 10) and ΔITM (eq. 11); NaN where a sub-text is empty.
    Per text: `pair_noise` (pair screening, `scio_rules.screen_pairs`; its sub-texts are then all in `noise`) and
    the full text's ITM match probability `itm_score`."""

    noise: list[list[bool]]
    delta_itc: list[list[float]]
    delta_itm: list[list[float]]
    candidates: int = 0  # fragments with ΔL_ITC < 0
    noisy: int = 0  # candidates confirmed by ΔITM > 0
    pair_noise: list[bool] = field(default_factory=list)
    itm_score: list[float] = field(default_factory=list)
    noisy_pairs: int = 0


@dataclass
class ReconstructionResult:
    """The texts after reconstruction, the remaining noise pool, which fragments were replaced, and ΔL_ITC / ΔITM
    of each attempt (eqs. 14-15; NaN where no attempt was made)."""

    texts: list[list[str]]
    noise: list[list[bool]]
    refined: list[list[bool]]
    delta_itc: list[list[float]]
    delta_itm: list[list[float]]
    counts: dict[str, int] = field(default_factory=dict)


def screen_texts(texts: list[list[str]], score: Scorer, pair_threshold: float | None = None,
                 pair_rank_threshold: float | None = None, pair_itc: bool = False,
                 margin: float = 0.0) -> ScreeningResult:
    """For every non-empty sub-text p_j: score t and t^(-j) with the same image and apply eqs. 10-11 (ΔL_ITC below
    `-margin`, `scio_rules.screen`).

    A text with a single non-empty sub-text is not screened (our choice: removing it would leave no text, and the
    paper screens segments within a text). Pair screening (`scio_rules.screen_pairs`) flags a text as a whole, all its
    sub-texts joining the noise pool: with `pair_itc`, when its full text's ITC loss is above its uniform value; with
    `pair_threshold` / `pair_rank_threshold`, when its ITM match probability / ITC rank among the queued texts is
    below it."""
    rows, queries, owners = [], [], []
    for b, text in enumerate(texts):
        rows.append(b)
        queries.append(text)
        owners.append((b, None))
        for j, part in enumerate(text):
            if part and sum(1 for p in text if p) > 1:
                rows.append(b)
                queries.append(without(text, j))
                owners.append((b, j))
    itc, itm, rank = score(rows, queries)
    full = {b: k for k, (b, j) in enumerate(owners) if j is None}
    removed = [k for k, (_, j) in enumerate(owners) if j is not None]
    anchors = [full[owners[k][0]] for k in removed]
    decision = screen(itc[anchors], itm[anchors], itc[removed], itm[removed], margin)
    result = ScreeningResult(
        noise=[[False] * len(text) for text in texts],
        delta_itc=[[math.nan] * len(text) for text in texts],
        delta_itm=[[math.nan] * len(text) for text in texts],
        candidates=int(decision.candidate.sum()),
        noisy=int(decision.noise.sum()),
        itm_score=[float(itm[full[b]]) for b in range(len(texts))],
    )
    full_rows = [full[b] for b in range(len(texts))]
    for position, k in enumerate(removed):
        b, j = owners[k]
        result.noise[b][j] = bool(decision.noise[position])
        result.delta_itc[b][j] = float(decision.delta_itc[position])
        result.delta_itm[b][j] = float(decision.delta_itm[position])
    flagged = [False] * len(texts)
    if pair_itc or pair_threshold is not None or pair_rank_threshold is not None:
        flagged = screen_pairs(itc[full_rows] if pair_itc else None, itm[full_rows], pair_threshold, rank[full_rows],
                               pair_rank_threshold).tolist()
        for b, pair in enumerate(flagged):
            if pair:
                result.noise[b] = [bool(part) for part in texts[b]]
    result.pair_noise, result.noisy_pairs = flagged, sum(flagged)
    return result


def reconstruct_texts(texts: list[list[str]], noise: list[list[bool]], fill: Filler, score: Scorer,
                      mask_token: str) -> ReconstructionResult:
    """Regenerate each noisy fragment from image + context and keep it only if eqs. 14-15 hold.

    Choices the paper leaves open:
    - A text with several noisy fragments is repaired one sub-text position at a time (p_1 first); each attempt is
      judged against the text as it stands, including the fragments accepted before it, so every accepted change
      improves the text the model will train on.
    - An empty regenerated fragment is rejected without scoring (it would turn reconstruction into deletion) and
      counted as `empty`.
    - A rejected fragment keeps its original text and stays in the noise pool (excluded from MLM targets).
    """
    texts = [list(text) for text in texts]  # row by row: rows given as one shared list stay independent
    noise = [list(flags) for flags in noise]
    refined = [[False] * len(text) for text in texts]
    delta_itc = [[math.nan] * len(text) for text in texts]
    delta_itm = [[math.nan] * len(text) for text in texts]
    counts = {"attempted": 0, "accepted": 0, "empty": 0}
    for j in range(max(map(len, texts), default=0)):
        rows = [b for b in range(len(texts)) if j < len(noise[b]) and noise[b][j]]
        if not rows:
            continue
        counts["attempted"] += len(rows)
        fragments = [fragment.strip() for fragment in fill(rows, [replaced(texts[b], j, mask_token) for b in rows])]
        kept = [(b, fragment) for b, fragment in zip(rows, fragments) if fragment]
        counts["empty"] += len(rows) - len(kept)
        if not kept:
            continue
        before = [texts[b] for b, _ in kept]
        after = [replaced(texts[b], j, fragment) for b, fragment in kept]
        itc, itm, _ = score([b for b, _ in kept] * 2, before + after)
        decision = accept_reconstruction(itc[: len(kept)], itm[: len(kept)], itc[len(kept):], itm[len(kept):])
        for position, (b, fragment) in enumerate(kept):
            delta_itc[b][j] = float(decision.delta_itc[position])
            delta_itm[b][j] = float(decision.delta_itm[position])
            if decision.accepted[position]:
                texts[b][j] = fragment
                noise[b][j] = False
                refined[b][j] = True
                counts["accepted"] += 1
    return ReconstructionResult(texts, noise, refined, delta_itc, delta_itm, counts)


class ModelTextOps:
    """`score` and `fill` of a SAR-KnowLIP model for one batch of images (eval mode, no gradients)."""

    def __init__(self, model, tokenizer, image_embeds: torch.Tensor, image_ids: torch.Tensor, max_length: int,
                 max_fragment_tokens: int, chunk_size: int = 64, group_ids: torch.Tensor | None = None):
        self.model, self.tokenizer = model, tokenizer
        self.image_embeds, self.image_ids = image_embeds, image_ids
        # the training positive rule: queue entries of the pair's caption/class group are not its ITC negatives
        self.group_ids = group_ids
        self.max_length, self.max_fragment_tokens, self.chunk_size = max_length, max_fragment_tokens, chunk_size
        self.truncated = 0  # texts cut at max_length while scoring or filling

    def _chunks(self, rows: list[int], texts: Texts):
        for start in range(0, len(rows), self.chunk_size):
            chunk_rows = torch.tensor(rows[start : start + self.chunk_size], device=self.image_embeds.device)
            encoded = encode_subtexts(self.tokenizer, texts[start : start + self.chunk_size], self.max_length)
            self.truncated += encoded.truncated
            device = self.image_embeds.device
            yield chunk_rows, encoded.input_ids.to(device), encoded.attention_mask.to(device)

    @torch.no_grad()
    def score(self, rows: list[int], texts: Texts) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """(ITC loss above its uniform value, ITM match probability, ITC rank among the queued texts) of each (image
        row, text)."""
        itc, itm, rank = [], [], []
        for chunk_rows, input_ids, attention_mask in self._chunks(rows, texts):
            scores = self.model.score_pairs(input_ids, attention_mask, image_embeds=self.image_embeds[chunk_rows],
                                            image_ids=self.image_ids[chunk_rows],
                                            group_ids=None if self.group_ids is None else self.group_ids[chunk_rows])
            itc.append((scores.itc_loss - scores.itc_uniform).float().cpu())
            itm.append(scores.itm_score.float().cpu())
            rank.append(scores.itc_rank.float().cpu())
        return torch.cat(itc), torch.cat(itm), torch.cat(rank)

    @torch.no_grad()
    def fill(self, rows: list[int], texts: Texts) -> list[str]:
        """Greedy decoding of each [MASK]ed fragment; a text whose [MASK] was truncated away gets ""."""
        fragments = []
        mask_id = self.tokenizer.mask_token_id
        for chunk_rows, input_ids, attention_mask in self._chunks(rows, texts):
            has_mask = input_ids.eq(mask_id).sum(1).eq(1)
            out = [""] * len(chunk_rows)
            if has_mask.any():
                generated = self.model.generate(
                    image_embeds=self.image_embeds[chunk_rows[has_mask]], input_ids=input_ids[has_mask],
                    attention_mask=attention_mask[has_mask], max_new_tokens=self.max_fragment_tokens, do_sample=False,
                )
                decoded = iter(self.tokenizer.batch_decode(generated, skip_special_tokens=True))
                out = [next(decoded) if ok else "" for ok in has_mask.tolist()]
            fragments.extend(out)
        return fragments


__all__ = ["ModelTextOps", "ReconstructionResult", "ScreeningResult", "reconstruct_texts", "screen_texts"]
