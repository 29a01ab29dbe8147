"""Texts made of sub-texts (paper 3.4: each image has 8 sub-texts p_1..p_8) as BERT inputs with per-token fragment ids.

A text is the sub-texts' WordPiece tokens in order between [CLS] and [SEP]. Each sub-text is tokenized on its own,
which for BERT's whitespace/punctuation pre-tokenizer gives the same ids as tokenizing the joined text, and tells
which tokens belong to which fragment (for SCIO's noise pool, eq. 10-11, and for masking a fragment, eq. 12).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

REMOVED = None  # a fragment left out of the text (t^(-j) of eq. 10)


@dataclass
class EncodedTexts:
    """input_ids / attention_mask (B, L); fragment_index (B, L): which sub-text each token comes from (-1 for
    special tokens, the [MASK] that stands for a masked fragment, and padding); truncated: how many texts lost
    tokens to `max_length`."""

    input_ids: torch.Tensor
    attention_mask: torch.Tensor
    fragment_index: torch.Tensor
    truncated: int

    def token_mask(self, fragment_flags: list[list[bool]]) -> torch.Tensor:
        """(B, L) bool: the tokens of the fragments flagged in `fragment_flags[b][j]` (e.g. the noise pool)."""
        flags = torch.zeros(self.fragment_index.shape[0], max(map(len, fragment_flags), default=0) + 1,
                            dtype=torch.bool)
        for row, row_flags in enumerate(fragment_flags):
            flags[row, : len(row_flags)] = torch.tensor(row_flags, dtype=torch.bool)
        index = self.fragment_index.clamp(min=0)
        return flags.gather(1, index) & (self.fragment_index >= 0)


def encode_subtexts(tokenizer, texts: list[list[str | None]], max_length: int) -> EncodedTexts:
    """Tokenize texts given as sub-text lists; a sub-text equal to `tokenizer.mask_token` becomes one [MASK]
    (eq. 12) and `None` (REMOVED) or "" contributes nothing. Texts longer than `max_length` tokens are cut at the end
    (counted in `truncated`)."""
    pieces = sorted({part for text in texts for part in text if part})
    ids_of = dict(zip(pieces, tokenizer(pieces, add_special_tokens=False)["input_ids"])) if pieces else {}
    rows, fragments, truncated = [], [], 0
    for text in texts:
        ids, owner = [tokenizer.cls_token_id], [-1]
        for index, part in enumerate(text):
            if not part:
                continue
            part_ids = ids_of[part]
            ids.extend(part_ids)
            owner.extend([-1 if part == tokenizer.mask_token else index] * len(part_ids))
        if len(ids) + 1 > max_length:
            truncated += 1
            ids, owner = ids[: max_length - 1], owner[: max_length - 1]
        rows.append(ids + [tokenizer.sep_token_id])
        fragments.append(owner + [-1])
    length = max(map(len, rows))
    input_ids = torch.full((len(rows), length), tokenizer.pad_token_id, dtype=torch.long)
    attention_mask = torch.zeros((len(rows), length), dtype=torch.long)
    fragment_index = torch.full((len(rows), length), -1, dtype=torch.long)
    for row, (ids, owner) in enumerate(zip(rows, fragments)):
        input_ids[row, : len(ids)] = torch.tensor(ids)
        attention_mask[row, : len(ids)] = 1
        fragment_index[row, : len(ids)] = torch.tensor(owner)
    return EncodedTexts(input_ids, attention_mask, fragment_index, truncated)


def without(text: list[str], index: int) -> list[str | None]:
    """t^(-j): the text with sub-text `index` removed (eq. 10)."""
    return [REMOVED if j == index else part for j, part in enumerate(text)]


def replaced(text: list[str], index: int, fragment: str) -> list[str]:
    """The text with sub-text `index` replaced by `fragment` (eq. 12 with the mask token, eq. 13 with p^_j)."""
    return [fragment if j == index else part for j, part in enumerate(text)]


__all__ = ["EncodedTexts", "REMOVED", "encode_subtexts", "replaced", "without"]
