"""Fragment masking for SAR-KnowLIP's MLM objective (eq. 6) and reconstruction (eqs. 12-13).

Choice: the paper masks "key information tokens" and regenerates them autoregressively with a decoder, and in SCIO
replaces a whole noisy fragment by a single [mask] (eq. 12). We train exactly what SCIO later asks for: each text gets
one contiguous masked span (about `mlm_span_fraction` of its content tokens), collapsed to one [MASK] in the encoder
input; the decoder writes the span's tokens and then [SEP]. Captioning (whole text masked) and VQA (answer masked)
are the same task with other spans.
"""

from typing import NamedTuple

import torch


class InfillBatch(NamedTuple):
    """Encoder input with each fragment collapsed to one [MASK], and the decoder's teacher-forcing input/labels.

    decoder_input_ids = [CLS] + fragment, labels = fragment + [SEP] (-100 on padding); a row without a fragment has
    no [MASK] and all labels -100.
    """

    input_ids: torch.Tensor
    attention_mask: torch.Tensor
    decoder_input_ids: torch.Tensor
    decoder_attention_mask: torch.Tensor
    labels: torch.Tensor


def content_tokens(input_ids: torch.Tensor, attention_mask: torch.Tensor, special_ids: list[int]) -> torch.Tensor:
    """(B, L) bool: real tokens that are not special tokens."""
    special = torch.isin(input_ids, torch.tensor(special_ids, device=input_ids.device))
    return attention_mask.bool() & ~special


def sample_fragment_mask(content: torch.Tensor, span_fraction: float,
                         exclude_mask: torch.Tensor | None = None) -> torch.Tensor:
    """One random contiguous span per row, of round(span_fraction * #content tokens) tokens (at least 1).

    Excluded tokens (SCIO's noise pool) are never inside the span; when no long enough run of allowed tokens exists,
    the span shrinks to the longest run; a row with no allowed token gets no span.
    """
    allowed = content if exclude_mask is None else content & ~exclude_mask.bool()
    batch, length = allowed.shape
    positions = torch.arange(length, device=allowed.device).expand(batch, length)
    # Length of the run of allowed tokens that starts at each position (0 where the token is not allowed).
    blocked_at = torch.where(allowed, length, positions)
    run = blocked_at.flip(1).cummin(1).values.flip(1) - positions
    wanted = (content.sum(1).float() * span_fraction).round().long().clamp(min=1)
    span = torch.minimum(wanted, run.max(1).values)
    candidates = (run >= span[:, None]) & (span[:, None] > 0)
    start = torch.where(candidates, torch.rand(batch, length, device=allowed.device), -1.0).argmax(1)
    inside = (positions >= start[:, None]) & (positions < (start + span)[:, None])
    return inside & (span[:, None] > 0)


def collapse_fragments(input_ids: torch.Tensor, attention_mask: torch.Tensor, fragment_mask: torch.Tensor,
                       content: torch.Tensor, cls_token_id: int, sep_token_id: int, mask_token_id: int,
                       pad_token_id: int) -> InfillBatch:
    """Replace each row's fragment (a contiguous run of content tokens, or nothing) by one [MASK] (eq. 12)."""
    fragment_mask = fragment_mask.bool()
    if (fragment_mask & ~content).any():
        raise ValueError("fragment mask covers padding or special tokens; it may only mark text tokens")
    starts = fragment_mask & ~torch.nn.functional.pad(fragment_mask, (1, 0))[:, :-1]
    if starts.sum(1).gt(1).any():
        rows = starts.sum(1).gt(1).nonzero().flatten().tolist()
        raise ValueError(f"fragment mask rows {rows} hold more than one span; mask one contiguous fragment per text")
    encoder_rows, decoder_rows, label_rows = [], [], []
    for ids, keep, fragment in zip(input_ids, attention_mask.bool(), fragment_mask):
        ids = ids[keep]
        fragment = fragment[keep]
        if fragment.any():
            where = fragment.nonzero().flatten()
            first, last = int(where[0]), int(where[-1]) + 1
            mask = ids.new_tensor([mask_token_id])
            encoder_rows.append(torch.cat([ids[:first], mask, ids[last:]]))
            decoder_rows.append(torch.cat([ids.new_tensor([cls_token_id]), ids[first:last]]))
            label_rows.append(torch.cat([ids[first:last], ids.new_tensor([sep_token_id])]))
        else:
            encoder_rows.append(ids)
            decoder_rows.append(ids.new_tensor([cls_token_id]))
            label_rows.append(ids.new_tensor([-100]))
    return InfillBatch(
        input_ids=_pad(encoder_rows, pad_token_id),
        attention_mask=_pad([torch.ones_like(row) for row in encoder_rows], 0),
        decoder_input_ids=_pad(decoder_rows, pad_token_id),
        decoder_attention_mask=_pad([torch.ones_like(row) for row in decoder_rows], 0),
        labels=_pad(label_rows, -100),
    )


def _pad(rows: list[torch.Tensor], value: int) -> torch.Tensor:
    return torch.nn.utils.rnn.pad_sequence(rows, batch_first=True, padding_value=value)


__all__ = ["InfillBatch", "content_tokens", "sample_fragment_mask", "collapse_fragments"]
