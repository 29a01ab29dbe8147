"""VQA accuracy per task type (SAR-KnowLIP paper 4.4, Table 6 "Visual Question Answer").

The paper reports one accuracy per task type without its matching rule. Ours: an answer is correct when its
normalised set of items equals the reference's. Normalisation (after the VQA v2 evaluation's answer processing,
simplified for single short reference answers): lower-case; split into items at commas, semicolons and the word
"and" (multi-item answers such as region lists "1, 5, 9" or "all landforms" match in any order and without
duplicates); in each item drop the punctuation except ``/`` (aircraft names such as "A320/321") and ``-``,
drop the articles a / an / the, and write number words zero..twenty as digits.

Beside it, `item_f1`: the micro F1 of the answers' items per task type (our addition, partial credit that exact match
does not give: "6" for the regions "5, 6" is one of two items right). It shows whether list answers (region numbers)
depend on the image before they are exactly right.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass

_NUMBER_WORDS = {
    word: str(value)
    for value, word in enumerate(
        "zero one two three four five six seven eight nine ten eleven twelve thirteen fourteen fifteen sixteen "
        "seventeen eighteen nineteen twenty".split()
    )
}
_ARTICLES = {"a", "an", "the"}
_ITEM_SEPARATOR = re.compile(r"[,;]|\band\b")
_PUNCTUATION = re.compile(r"[^\w\s/\-]")


def normalize_answer(answer: str) -> frozenset[str]:
    """The set of normalised items of an answer (see the module docstring); empty items are dropped."""
    items = set()
    for item in _ITEM_SEPARATOR.split(answer.lower()):
        words = [_NUMBER_WORDS.get(w, w) for w in _PUNCTUATION.sub(" ", item).split() if w not in _ARTICLES]
        if words:
            items.add(" ".join(words))
    return frozenset(items)


def set_match(predicted: Sequence[frozenset], expected: Sequence[frozenset]) -> tuple[float, float]:
    """Exact-match share and micro F1 of the items (0 where neither side has one), in percent, of paired item sets:
    normalised answers here, a grounding scorer's regions in `train.knowlip.evaluate.evaluate_region_scorer`."""
    if len(predicted) != len(expected) or not predicted:
        raise ValueError(f"got {len(predicted)} predicted and {len(expected)} expected item sets")
    exact = sum(p == e for p, e in zip(predicted, expected))
    shared, items = sum(len(p & e) for p, e in zip(predicted, expected)), sum(len(p) + len(e) for p, e in
                                                                            zip(predicted, expected))
    return 100.0 * exact / len(predicted), 200.0 * shared / items if items else 0.0


@dataclass(frozen=True)
class VqaAccuracy:
    """Accuracy in percent per task type (in `task_order`, only the types present), question counts, the accuracy
    over all questions, and the answer items' micro F1 in percent per task type (module docstring)."""

    per_task: dict[str, float]
    questions: dict[str, int]
    overall: float
    item_f1: dict[str, float]


def vqa_accuracy(
    predictions: Sequence[str],
    references: Sequence[str],
    task_types: Sequence[str],
    task_order: Sequence[str] | None = None,
) -> VqaAccuracy:
    """Exact-match accuracy of normalised answers, per task type.

    `task_order`: the known task types in report order (SAR-KnowLIP: its config's `VQA_TASK_TYPES`, paper Table 6
    order); a type outside it is an error. None: the types in order of first appearance.
    """
    if not len(predictions) == len(references) == len(task_types):
        raise ValueError(
            f"got {len(predictions)} predictions, {len(references)} references and {len(task_types)} task types"
        )
    if not predictions:
        raise ValueError("no question to evaluate")
    order = list(dict.fromkeys(task_types)) if task_order is None else list(task_order)
    if unknown := sorted(set(task_types) - set(order)):
        raise ValueError(f"unknown VQA task types {unknown}; expected some of {order}")
    if empty := [i for i, r in enumerate(references) if not normalize_answer(r)]:
        raise ValueError(f"references {empty[:10]} are empty after normalisation ({len(empty)} in all)")
    pairs: dict[str, tuple[list, list]] = {}  # task type -> (predicted, expected) item sets
    for prediction, reference, task in zip(predictions, references, task_types):
        predicted, expected = pairs.setdefault(task, ([], []))
        predicted.append(normalize_answer(prediction))
        expected.append(normalize_answer(reference))
    scores = {task: set_match(*pairs[task]) for task in order if task in pairs}
    return VqaAccuracy(
        per_task={task: exact for task, (exact, _) in scores.items()},
        questions={task: len(pairs[task][0]) for task in scores},
        overall=sum(exact * len(pairs[task][0]) for task, (exact, _) in scores.items()) / len(predictions),
        item_f1={task: f1 for task, (_, f1) in scores.items()},
    )


def majority_answer_accuracy(
    train_answers: Sequence[str],
    train_task_types: Sequence[str],
    references: Sequence[str],
    task_types: Sequence[str],
    task_order: Sequence[str] | None = None,
) -> VqaAccuracy:
    """The class-prior level a VQA model must beat: per task type, the accuracy of giving every test question the
    most frequent training answer of its type (normalised as `vqa_accuracy` does). When several answers tie for most
    frequent, the best of them on the test questions counts (the prior is never under-stated); a type without
    training questions scores 0."""
    counts: dict[str, Counter] = {}
    for answer, task in zip(train_answers, train_task_types, strict=True):
        counts.setdefault(task, Counter())[normalize_answer(answer)] += 1
    test_answers = Counter((task, normalize_answer(r)) for r, task in zip(references, task_types))
    prior = {}  # task type -> its answer
    for task, answers in counts.items():
        most = max(answers.values())
        tied = [a for a, n in answers.items() if n == most]
        prior[task] = ", ".join(sorted(max(tied, key=lambda a: (test_answers[task, a], sorted(a)))))
    predictions = [prior.get(task, "") for task in task_types]
    return vqa_accuracy(predictions, references, task_types, task_order)  # "" (no training answer) never matches
