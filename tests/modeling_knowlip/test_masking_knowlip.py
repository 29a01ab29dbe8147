import pytest
import torch

from modeling_knowlip.masking_knowlip import collapse_fragments, content_tokens, sample_fragment_mask

CLS, SEP, MASK, PAD = 2, 3, 4, 0


def _ids():
    ids = torch.tensor([[CLS, 10, 11, 12, 13, 14, 15, 16, 17, SEP],
                        [CLS, 20, 21, 22, SEP, PAD, PAD, PAD, PAD, PAD]])
    return ids, ids.ne(PAD).long()


def _runs(row: torch.Tensor) -> int:
    return int((row & ~torch.nn.functional.pad(row, (1, 0))[:-1]).sum())


def test_fragment_is_one_contiguous_span_of_content_tokens():
    ids, mask = _ids()
    content = content_tokens(ids, mask, [CLS, SEP, MASK, PAD])
    torch.manual_seed(0)
    for _ in range(50):
        fragment = sample_fragment_mask(content, span_fraction=0.4)
        assert not (fragment & ~content).any()
        assert fragment.sum(1).tolist() == [3, 1]  # round(0.4 * 8), max(1, round(0.4 * 3))
        assert [_runs(row) for row in fragment] == [1, 1]


def test_fragment_avoids_excluded_tokens_and_shrinks_to_fit():
    ids, mask = _ids()
    content = content_tokens(ids, mask, [CLS, SEP, MASK, PAD])
    exclude = torch.zeros_like(content)
    exclude[0, 2:8] = True  # row 0 keeps tokens 1 and 8 only (runs of length 1)
    exclude[1, 1:4] = True  # row 1 has nothing left
    torch.manual_seed(0)
    for _ in range(20):
        fragment = sample_fragment_mask(content, 0.5, exclude)
        assert not (fragment & exclude).any()
        assert fragment[0].sum() == 1 and fragment[1].sum() == 0


def test_collapse_replaces_the_fragment_by_one_mask():
    ids, mask = _ids()
    content = content_tokens(ids, mask, [CLS, SEP, MASK, PAD])
    fragment = torch.zeros_like(content)
    fragment[0, 3:6] = True
    batch = collapse_fragments(ids, mask, fragment, content, CLS, SEP, MASK, PAD)
    assert batch.input_ids[0].tolist() == [CLS, 10, 11, MASK, 15, 16, 17, SEP]
    assert batch.decoder_input_ids[0].tolist() == [CLS, 12, 13, 14]
    assert batch.labels[0].tolist() == [12, 13, 14, SEP]
    # the row without a fragment keeps its text and has no target
    assert batch.input_ids[1, :5].tolist() == [CLS, 20, 21, 22, SEP] and batch.attention_mask[1].sum() == 5
    assert (batch.labels[1] == -100).all()


def test_collapse_rejects_bad_fragments():
    ids, mask = _ids()
    content = content_tokens(ids, mask, [CLS, SEP, MASK, PAD])
    two_spans = torch.zeros_like(content)
    two_spans[0, [2, 5]] = True
    with pytest.raises(ValueError, match=r"rows \[0\] hold more than one span"):
        collapse_fragments(ids, mask, two_spans, content, CLS, SEP, MASK, PAD)
    special = torch.zeros_like(content)
    special[0, 0] = True
    with pytest.raises(ValueError, match="padding or special tokens"):
        collapse_fragments(ids, mask, special, content, CLS, SEP, MASK, PAD)
