"""`RunLog`, the one metrics log of every trainer: JSON lines beside the run, the numbers to the trackers, and a resumed
run's log reading as one uninterrupted run (the three trainers: test_resume_every_trainer.py)."""

import json

from accelerate import Accelerator

from train.common.run_log import RunLog, flat_numbers, read_run_log


def test_records_go_to_the_jsonl_file_and_numbers_to_tensorboard(tmp_path):
    accelerator = Accelerator(log_with="tensorboard", project_dir=str(tmp_path / "logs"))
    log = RunLog(accelerator, tmp_path, {"learning_rate": 1e-3, "stages": [1, 2]})
    log.log({"loss": 2.5, "kind": "train", "lr_trace": [1e-3]}, step=3)
    log.log(flat_numbers({"vqa": {"per_task": {"target count": 44.4}, "position_answers": "decoder"}}, "eval"), step=3)
    log.close()
    assert read_run_log(tmp_path) == [{"step": 3, "loss": 2.5, "kind": "train", "lr_trace": [1e-3]},
                                      {"step": 3, "eval/vqa/per_task/target count": 44.4}]
    events = list((tmp_path / "logs").rglob("events.out.tfevents.*"))
    assert events and sum(path.stat().st_size for path in events) > 100


def test_a_resumed_log_keeps_what_its_checkpoint_covers_and_drops_a_torn_line(tmp_path):
    first = RunLog(Accelerator(), tmp_path)
    for step in (10, 20, 30):
        first.log({"loss": 1.0 / step}, step)
    with open(tmp_path / "metrics.jsonl", "a", encoding="utf-8") as file:
        file.write('{"step": 40, "lo')  # a kill in the middle of a write
    resumed = RunLog(Accelerator(), tmp_path, keep=lambda record: record["step"] <= 20, step=20)
    assert resumed.step == 20 and [r["step"] for r in read_run_log(tmp_path)] == [10, 20]
    resumed.log({"loss": 0.5}, 30)
    assert [json.loads(line)["step"] for line in (tmp_path / "metrics.jsonl").read_text().splitlines()] == [10, 20, 30]
    RunLog(Accelerator(), tmp_path)  # a new run starts a new log
    assert read_run_log(tmp_path) == []
