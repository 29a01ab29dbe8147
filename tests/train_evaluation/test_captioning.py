"""COCO caption metrics (pycocoevalcap, Java) against hand-computed values."""

from pathlib import Path

import pytest

from train.evaluation.captioning import caption_metrics

PREDICTIONS = ["a b c d e", "Ships, port."]
REFERENCES = [["a b c d f"], ["ships port"]]


@pytest.fixture(scope="module")
def scores():
    return caption_metrics(PREDICTIONS, REFERENCES)


def test_bleu_rouge_cider_by_hand(scores):
    # PTB tokenisation lower-cases and drops punctuation: item 1 becomes "ships port" = its reference.
    # Corpus BLEU: n-gram matches / candidates over both items: 1-gram 6/7, 2-gram 4/5, 3-gram 2/3, 4-gram 1/2
    # (item 1 has no 3- or 4-grams); equal lengths, so no brevity penalty.
    assert scores["bleu_1"] == pytest.approx(100 * 6 / 7, rel=1e-6)
    assert scores["bleu_2"] == pytest.approx(100 * (6 / 7 * 4 / 5) ** 0.5, rel=1e-6)
    assert scores["bleu_4"] == pytest.approx(100 * (6 / 7 * 4 / 5 * 2 / 3 * 1 / 2) ** 0.25, rel=1e-6)
    # ROUGE-L: item 0 LCS 4 of 5 words (P = R = 0.8, F = 0.8); item 1 identical (1.0).
    assert scores["rouge_l"] == pytest.approx(100 * (0.8 + 1.0) / 2)
    # CIDEr-D: 2 images, every reference n-gram occurs in one of them (same idf log 2 for all, also for the
    # unseen "e"), equal lengths. Item 0: cosines 4/5, 3/4, 2/3, 1/2 for n = 1..4; item 1: 1, 1 and no 3-/4-grams
    # (0). CIDEr = 10 x mean over n, averaged over items.
    item0 = 10 * (4 / 5 + 3 / 4 + 2 / 3 + 1 / 2) / 4
    item1 = 10 * (1 + 1 + 0 + 0) / 4
    assert scores["cider"] == pytest.approx(100 * (item0 + item1) / 2)


def test_meteor_by_hand(scores):
    # METEOR 1.5 (en, -norm: alpha 0.85, beta 0.2, gamma 0.6, delta 0.75), corpus level from summed statistics.
    # Words: item 0 has content words b c d e (3 matched) and function word "a" (matched); item 1 content words
    # ships port (2 matched). P = R = (0.75 * 5 + 0.25 * 1) / (0.75 * 6 + 0.25 * 1) = 4 / 4.75.
    # Fragmentation: item 0 is 1 chunk; an exact match (item 1) counts no chunk; 6 matches:
    # penalty = 0.6 * (1 / 6) ** 0.2.
    assert scores["meteor"] == pytest.approx(100 * (4 / 4.75) * (1 - 0.6 * (1 / 6) ** 0.2), rel=1e-6)
    assert set(scores) == {"bleu_1", "bleu_2", "bleu_3", "bleu_4", "meteor", "rouge_l", "cider"}


def test_bad_inputs_are_named():
    with pytest.raises(ValueError, match="2 predictions but 1 reference lists"):
        caption_metrics(PREDICTIONS, REFERENCES[:1])
    with pytest.raises(ValueError, match=r"references\[0\] is a string"):
        caption_metrics(["a"], ["a"])
    with pytest.raises(ValueError, match="item 0 has no reference caption"):
        caption_metrics(["a"], [[]])
    with pytest.raises(ValueError, match="no caption"):
        caption_metrics([], [])
    with pytest.raises(ValueError, match=r"references of items \[1\] are empty after PTB tokenisation"):
        caption_metrics(["ships", "port"], [["ships"], ["..."]])


def test_an_empty_generated_caption_is_scored_as_wrong_not_refused(caplog):
    """A barely trained captioner can generate nothing: the evaluation scores it as a miss and says so."""
    references = [["ships near the port"], ["a bridge over the river"]]
    with caplog.at_level("WARNING"):
        empty = caption_metrics(["ships near the port", "..."], references)
    assert "1 of 2 generated captions are empty" in caplog.text
    # exactly as if it had said one word that no reference holds
    assert empty == caption_metrics(["ships near the port", "zebra"], references)
    assert empty["cider"] < caption_metrics(["ships near the port", "a bridge"], references)["cider"]
    assert empty["rouge_l"] == pytest.approx(50.0)  # the empty item scores 0, the exact one 100


def test_spice_without_corenlp_says_what_is_missing():
    import pycocoevalcap.spice.spice as spice_module

    if (Path(spice_module.__file__).parent / "lib" / "stanford-corenlp-3.6.0.jar").is_file():
        pytest.skip("Stanford CoreNLP is installed here: SPICE can run")
    with pytest.raises(RuntimeError, match="SPICE needs Stanford CoreNLP 3.6.0"):
        caption_metrics(["ships port"], [["ships port"]], spice=True)
