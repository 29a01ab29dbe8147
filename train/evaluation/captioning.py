"""Caption metrics BLEU-1..4, METEOR, ROUGE-L, CIDEr (and optionally SPICE) through ``pycocoevalcap``
(SAR-KnowLIP paper 4.4, Table 6 "Image Caption").

The COCO caption evaluation as BLIP runs it: captions are tokenised with the Stanford PTB tokenizer (lower-cased,
punctuation removed), then each scorer returns its corpus-level score; CIDEr is CIDEr-D with its idf taken from
the references being evaluated. Scores are multiplied by 100, as in the paper's tables. The tokenizer, METEOR and
SPICE run Java (``java`` on PATH). SPICE (optional) additionally needs Stanford CoreNLP 3.6.0 in pycocoevalcap's
``spice/lib`` folder, which pycocoevalcap can only download where a network is available.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path

import pycocoevalcap.spice.spice as spice_module
from pycocoevalcap.bleu.bleu import Bleu
from pycocoevalcap.cider.cider import Cider
from pycocoevalcap.meteor.meteor import Meteor
from pycocoevalcap.rouge.rouge import Rouge
from pycocoevalcap.tokenizer.ptbtokenizer import PTBTokenizer

logger = logging.getLogger(__name__)

# The word an empty generated caption is scored as: it matches no reference.
EMPTY_CAPTION = "emptycaption"


def caption_metrics(
    predictions: Sequence[str], references: Sequence[Sequence[str]], spice: bool = False
) -> dict[str, float]:
    """Corpus-level caption scores (x 100) of ``predictions[i]`` against the reference captions ``references[i]``.

    Returns ``{"bleu_1", "bleu_2", "bleu_3", "bleu_4", "meteor", "rouge_l", "cider"}`` plus ``"spice"`` when asked.
    """
    if len(predictions) != len(references):
        raise ValueError(f"{len(predictions)} predictions but {len(references)} reference lists")
    if not predictions:
        raise ValueError("no caption to evaluate")
    for i, (prediction, refs) in enumerate(zip(predictions, references)):
        if isinstance(refs, str):
            raise ValueError(f"references[{i}] is a string; give a list of reference captions per image")
        if not refs:
            raise ValueError(f"item {i} has no reference caption")
        if not isinstance(prediction, str):
            raise ValueError(f"predictions[{i}] is {type(prediction).__name__}, not a caption string")
    if spice:
        _require_corenlp()  # before the slow scorers: fail fast
    tokenizer = PTBTokenizer()
    gts = tokenizer.tokenize({i: [{"caption": c} for c in refs] for i, refs in enumerate(references)})
    res = tokenizer.tokenize({i: [{"caption": p}] for i, p in enumerate(predictions)})
    if empty := [i for i, refs in gts.items() if not any(r.strip() for r in refs)]:
        raise ValueError(f"references of items {empty[:10]} are empty after PTB tokenisation ({len(empty)} in all)")
    # A model can generate an empty caption (or punctuation only, which the PTB tokenizer removes). That is a
    # wrong answer, not bad input: it is scored as one word that matches no reference (METEOR's Java scorer
    # cannot take an empty hypothesis), so it earns nothing on any metric and still counts in the corpus.
    if empty := [i for i, (hyp,) in res.items() if not hyp.strip()]:
        logger.warning("%d of %d generated captions are empty (items %s); scored as matching no reference",
                       len(empty), len(res), empty[:10])
        vocabulary = {word for refs in gts.values() for ref in refs for word in ref.split()}
        no_match = next(w for w in (f"{EMPTY_CAPTION}{n or ''}" for n in range(len(vocabulary) + 1))
                        if w not in vocabulary)
        res.update({i: [no_match] for i in empty})

    bleu, _ = Bleu(4).compute_score(gts, res, verbose=0)
    scores = {f"bleu_{n}": b for n, b in enumerate(bleu, start=1)}
    scores["meteor"], _ = Meteor().compute_score(gts, res)  # its Java process ends when the scorer is collected
    scores["rouge_l"], _ = Rouge().compute_score(gts, res)
    scores["cider"], _ = Cider().compute_score(gts, res)
    if spice:
        scores["spice"] = _spice(gts, res)
    return {name: float(100.0 * value) for name, value in scores.items()}


def _require_corenlp() -> None:
    corenlp = Path(spice_module.__file__).parent / "lib" / "stanford-corenlp-3.6.0.jar"
    if not corenlp.is_file():
        # Checked here: pycocoevalcap would otherwise try to download it (no network on the project machines).
        raise RuntimeError(
            f"SPICE needs Stanford CoreNLP 3.6.0 at {corenlp} (and its models jar beside it); pycocoevalcap's "
            "get_stanford_models() downloads both where a network is available"
        )


def _spice(gts: dict, res: dict) -> float:
    score, _ = spice_module.Spice().compute_score(gts, res)
    return score
