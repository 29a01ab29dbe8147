"""VQA accuracy per task type: hand-made cases and the real evaluation sets."""

import pytest

from dataset_scripts.geovl.vqa_sets import hrsid_vqa, mstar_recognition_vqa
from modeling_knowlip.configuration_knowlip import VQA_TASK_TYPES
from train.evaluation.vqa import majority_answer_accuracy, normalize_answer, set_match, vqa_accuracy


def test_normalisation():
    assert normalize_answer("Five ships.") == {"5 ships"}
    assert normalize_answer("9, 1 and 5") == normalize_answer("1, 5, 9") == {"1", "5", "9"}
    assert normalize_answer("A320/321; Boeing737") == {"a320/321", "boeing737"}
    assert normalize_answer("The water") == {"water"}
    assert normalize_answer("land, sand") == {"land", "sand"}  # "and" only splits as a word
    assert normalize_answer(" , ") == frozenset()


def test_accuracy_per_task_type_by_hand():
    rows = [
        ("5", "5", "target count"),  # correct
        ("five", "5", "target count"),  # correct: number word
        ("4", "5", "target count"),  # wrong
        ("Ship.", "ship", "target recognition"),  # correct
        ("A320/321, Boeing737", "Boeing737, A320/321", "target recognition"),  # correct: order-free
        ("1, 5", "1, 5, 9", "target position"),  # wrong: a region missing
        ("9, 1 and 5", "1, 5, 9", "target position"),  # correct
        ("the water", "water", "main landform"),  # correct
        ("building, vegetation", "building, water, vegetation", "all landforms"),  # wrong
    ]
    predictions, references, tasks = zip(*rows)
    acc = vqa_accuracy(predictions, references, tasks, task_order=VQA_TASK_TYPES)
    assert acc.per_task == pytest.approx(
        {"target count": 200 / 3, "target recognition": 100.0, "target position": 50.0, "main landform": 100.0,
         "all landforms": 0.0}
    )
    assert list(acc.per_task) == ["target count", "target recognition", "target position", "main landform", "all landforms"]
    assert acc.questions == {"target count": 3, "target recognition": 2, "target position": 2, "main landform": 1,
                             "all landforms": 1}
    assert acc.overall == pytest.approx(600 / 9)
    # items: position "1, 5" vs "1, 5, 9" shares 2 of 2 + 3, "9, 1 and 5" 3 of 3 + 3 -> F1 2 * 5 / 11;
    # all landforms 2 of 2 + 3; count "4" vs "5" shares none
    assert acc.item_f1 == pytest.approx(
        {"target count": 2 * 2 / 6 * 100, "target recognition": 100.0, "target position": 1000 / 11,
         "main landform": 100.0, "all landforms": 80.0})


def test_the_majority_answer_prior_per_task_type():
    count, recognition, position = VQA_TASK_TYPES[:3]
    train = [("3", count), ("three", count), ("2", count), ("5", position), ("4", position), ("1, 5", position)]
    test = [("3", count), ("2", count), ("4", position), ("4", position), ("5", position), ("ship", recognition)]
    prior = majority_answer_accuracy(*zip(*train), *zip(*test), VQA_TASK_TYPES)
    # count: "3" (twice, "three" normalised) is right once in 2; position: "5" and "4" tie, and "4" scores 2 in 3;
    # recognition: no training answer, nothing scores
    assert prior.per_task == {count: 50.0, recognition: 0.0, position: pytest.approx(200 / 3)}
    assert prior.questions == {count: 2, recognition: 1, position: 3}


def test_bad_inputs_are_named():
    with pytest.raises(ValueError, match="unknown VQA task types \\['target_count'\\]"):
        vqa_accuracy(["1"], ["1"], ["target_count"], task_order=VQA_TASK_TYPES)
    with pytest.raises(ValueError, match="2 predictions, 1 references and 1 task types"):
        vqa_accuracy(["1", "2"], ["1"], ["target count"])
    with pytest.raises(ValueError, match=r"references \[0\] are empty"):
        vqa_accuracy(["1"], ["."], ["target count"])


def test_real_mstar_constant_guess(sar_data_dir):
    ds = mstar_recognition_vqa(sar_data_dir, max_per_class=3).remove_columns("image")
    acc = vqa_accuracy(["2S1"] * len(ds), ds["answer"], ds["task_type"])
    # 10 classes, 3 chips each: one class in ten is right.
    assert acc.per_task == {"target recognition": 10.0} and acc.questions == {"target recognition": 30}


def test_real_hrsid_reordered_answers_are_right(sar_data_dir):
    ds = hrsid_vqa(sar_data_dir).remove_columns("image")
    reordered = [", ".join(reversed(a.split(", "))) for a in ds["answer"]]
    assert reordered != ds["answer"]  # some answers list several regions
    acc = vqa_accuracy(reordered, ds["answer"], ds["task_type"])
    assert acc.per_task == {"target count": 100.0, "target recognition": 100.0, "target position": 100.0}
    assert acc.questions["target count"] == 40
    off_by_one = [str(int(a) + 1) if t == "target count" else a for a, t in zip(ds["answer"], ds["task_type"])]
    assert vqa_accuracy(off_by_one, ds["answer"], ds["task_type"]).per_task["target count"] == 0.0


def test_set_match_scores_exact_sets_and_shared_items():
    exact, f1 = set_match([frozenset({1, 4}), frozenset(), frozenset({6})],
                          [frozenset({1, 4}), frozenset(), frozenset({5, 6})])
    assert exact == pytest.approx(200 / 3) and f1 == pytest.approx(200 * 3 / 7)  # 3 shared of 3 + 4 items
    assert set_match([frozenset()], [frozenset()]) == (100.0, 0.0)  # nothing to find: exact, but no item to score
    with pytest.raises(ValueError, match="got 1 predicted and 2 expected item sets"):
        set_match([frozenset()], [frozenset(), frozenset()])
