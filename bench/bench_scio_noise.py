"""SCIO noise benchmark: give a known share of the training images another class's captions, run SCIO, and measure
how well screening finds them (precision / recall per pair and per sub-text) and what reconstruction does with them.

    python bench/bench_scio_noise.py --data /tmp/mstar_ds --mode whole --out runs/scio_noise_whole [--noise 0.2]

--data is a built dataset folder with `captions` (a list per image, one caption = one SCIO sub-text) and a ClassLabel
`label` (`python -m dataset_scripts build mstar --source ../shared/data/mstar_soc --out /tmp/mstar_ds`).
Noise (seeded): `--noise` of the train images are chosen; `whole` replaces an image's whole caption list with the list
of a random image of another class; `one` replaces one caption of its list (a random position) with a random caption
of another class. SCIO runs with `--config` (default train/knowlip/configs/small_real.yaml) and any `--set key=value`
overrides (the config's screening: eqs. 10-11 with `screening_margin`, and pair screening of texts whose ITC loss is
above its uniform value; `--set pair_itc_screening=false --set screening_margin=0` is the paper's). Ground truth: a pair is noisy if any of its sub-texts was replaced; a sub-text is noisy if it was replaced.
A pair counts as flagged if screening put any of its sub-texts into the noise pool (pair screening puts all).
Reconstruction: of the noisy (clean) sub-texts, how many were rewritten, and how many noisy sub-texts name the image's
own class / the wrong class before (v1) and after (v2) it; a sub-text names a class if it holds one of that class's
words (words in >= 90 % of its clean captions and in < 5 % of the other classes').

Writes OUT/noise_results.json and prints a table. The labels are never given to SCIO unless
`--set positive_groups=label`.
"""

from __future__ import annotations

import os

for _variable in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_variable, "1")

import json  # noqa: E402
import random  # noqa: E402
import re  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402
from sar_utils.command_line import ArgumentParser, run_cli  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
DEFAULT_CONFIG = ROOT / "train" / "knowlip" / "configs" / "small_real.yaml"
MODES = ("whole", "one")

from sar_utils.atomic import write_json  # noqa: E402


def inject_noise(captions: list[list[str]], labels: list[int], share: float, mode: str, seed: int = 0
                 ) -> tuple[list[list[str]], list[list[bool]]]:
    """Captions with `share` of the images given another class's captions; per image and caption, whether replaced.

    whole: the whole list is replaced by the list of a random image of another class; one: one caption (a random
    position) by a random caption of another class. Needs at least 2 classes.
    """
    if mode not in MODES:
        raise ValueError(f"mode must be one of {MODES}, got {mode!r}")
    if not 0.0 <= share <= 1.0:
        raise ValueError(f"noise share must be in [0, 1], got {share}")
    by_class: dict[int, list[int]] = {}
    for index, label in enumerate(labels):
        by_class.setdefault(label, []).append(index)
    if len(by_class) < 2:
        raise ValueError("noise injection needs at least 2 classes")
    rng = random.Random(seed)
    chosen = sorted(rng.sample(range(len(captions)), round(share * len(captions))))
    noisy = [list(text) for text in captions]
    flags = [[False] * len(text) for text in captions]
    for index in chosen:
        other = rng.choice([label for label in by_class if label != labels[index]])
        donor = captions[rng.choice(by_class[other])]
        if mode == "whole":
            noisy[index], flags[index] = list(donor), [True] * len(donor)
        else:
            position = rng.randrange(len(noisy[index]))
            noisy[index][position] = rng.choice(donor)
            flags[index][position] = True
    return noisy, flags


def precision_recall(truth: list[bool], flagged: list[bool]) -> dict:
    """Precision, recall and F1 of `flagged` against `truth` (0 where undefined), with the counts."""
    hits = sum(t and f for t, f in zip(truth, flagged))
    n_flagged, n_true = sum(flagged), sum(truth)
    precision = hits / n_flagged if n_flagged else 0.0
    recall = hits / n_true if n_true else 0.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    return {"precision": precision, "recall": recall, "f1": f1, "flagged": n_flagged, "noisy": n_true,
            "total": len(truth), "base_rate": n_true / len(truth) if truth else 0.0}


def screening_metrics(truth: list[list[bool]], noise_pool: list[list[bool]]) -> dict:
    """Per-pair (any sub-text flagged / replaced) and per-sub-text precision and recall."""
    pair = precision_recall([any(t) for t in truth], [any(f) for f in noise_pool])
    sub = precision_recall([x for t in truth for x in t], [x for f in noise_pool for x in f])
    return {"pair": pair, "subtext": sub}


def _words(text: str) -> set[str]:
    return set(re.findall(r"[a-z0-9]+(?:[-_][a-z0-9]+)*", text.lower()))


def class_words(captions: list[list[str]], labels: list[int]) -> dict[int, set[str]]:
    """Per class, the words in >= 90 % of its captions and in < 5 % of the other classes' captions."""
    counts: dict[int, dict[str, int]] = {}
    totals: dict[int, int] = {}
    for text, label in zip(captions, labels):
        for caption in text:
            totals[label] = totals.get(label, 0) + 1
            for word in _words(caption):
                counts.setdefault(label, {})[word] = counts.setdefault(label, {}).get(word, 0) + 1
    words = {}
    for label, table in counts.items():
        others = sum(totals[o] for o in totals if o != label)
        words[label] = {w for w, n in table.items() if n >= 0.9 * totals[label]
                        and sum(counts[o].get(w, 0) for o in counts if o != label) < 0.05 * max(others, 1)}
    return words


def names_class(text: str, words: set[str]) -> bool:
    return bool(_words(text) & words)


def reconstruction_metrics(truth: list[list[bool]], labels: list[int], before: list[list[str]],
                           after: list[list[str]], refined: list[list[bool]], words: dict[int, set[str]]) -> dict:
    """What reconstruction did to the noisy and the clean sub-texts."""
    noisy = [(b, j) for b, t in enumerate(truth) for j, x in enumerate(t) if x]
    clean = [(b, j) for b, t in enumerate(truth) for j, x in enumerate(t) if not x]

    def own(texts, b, j):
        return names_class(texts[b][j], words[labels[b]])

    def wrong(texts, b, j):
        return any(names_class(texts[b][j], w) for label, w in words.items() if label != labels[b])

    return {
        "noisy_subtexts": len(noisy),
        "noisy_rewritten": sum(refined[b][j] for b, j in noisy),
        "clean_rewritten": sum(refined[b][j] for b, j in clean),
        "noisy_naming_own_class_before": sum(own(before, b, j) for b, j in noisy),
        "noisy_naming_own_class_after": sum(own(after, b, j) for b, j in noisy),
        "noisy_naming_wrong_class_before": sum(wrong(before, b, j) for b, j in noisy),
        "noisy_naming_wrong_class_after": sum(wrong(after, b, j) for b, j in noisy),
        "clean_naming_wrong_class_after": sum(wrong(after, b, j) for b, j in clean),
    }


def parse_args(argv=None):
    parser = ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", required=True, help="built dataset folder with `captions` and a ClassLabel `label`")
    parser.add_argument("--out", required=True, help="output folder (SCIO run + noise_results.json)")
    parser.add_argument("--mode", default="whole", help=f"noise kind: {' | '.join(MODES)}")
    parser.add_argument("--noise", type=float, default=0.2, help="share of train images made noisy (default 0.2)")
    parser.add_argument("--config", default=str(DEFAULT_CONFIG), help="SCIO run config YAML (default small_real)")
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                        help="override a ScioRunConfig field (YAML value), e.g. --set stage_epochs=[1,1,1]")
    parser.add_argument("--max_train_samples", type=int, default=None, help="first N train images only")
    parser.add_argument("--seed", type=int, default=0, help="seed of the noise choice")
    args = parser.parse_args(argv)
    if args.mode not in MODES:
        parser.error(f"--mode must be one of {', '.join(MODES)}, got {args.mode!r}")
    if not 0.0 < args.noise < 1.0:
        parser.error(f"--noise must be in (0, 1), got {args.noise}")
    if not Path(args.data).is_dir():
        parser.error(f"--data {args.data}: not a folder (build one with python -m dataset_scripts build mstar ...)")
    if not Path(args.config).is_file():
        parser.error(f"--config {args.config}: no such file")
    if args.max_train_samples is not None and args.max_train_samples < 4:
        parser.error(f"--max_train_samples must be at least 4, got {args.max_train_samples}")
    for item in args.set:
        if "=" not in item:
            parser.error(f"--set {item!r}: expected KEY=VALUE")
    return parser, args


def main(argv=None) -> int:
    parser, args = parse_args(argv)
    import datasets
    import yaml

    from train.knowlip.fit import load_scio_model
    from train.knowlip.run_config import ScioRunConfig
    from train.common.run_log import trainer_accelerator
    from train.knowlip.scio_trainer import ScioTrainer, load_text_version

    split = datasets.load_dataset(args.data)["train"]
    if "captions" not in split.column_names or not isinstance(split.features.get("label"), datasets.ClassLabel):
        parser.error(f"--data {args.data}: the train split needs `captions` and a ClassLabel `label` "
                     f"(columns: {split.column_names})")
    if args.max_train_samples:
        split = split.select(range(min(args.max_train_samples, len(split))))
    overrides = {}
    for item in args.set:
        key, value = item.split("=", 1)
        overrides[key] = yaml.safe_load(value)
    try:
        config = ScioRunConfig.from_yaml(args.config, **overrides, output_dir=str(Path(args.out) / "scio"),
                                         data=args.data)
    except (TypeError, ValueError) as error:
        parser.error(f"config: {error}")
    if config.positive_groups == "auto":
        config.positive_groups = "caption"  # the labels stay hidden from SCIO (they are the benchmark's truth)
    labels = list(split["label"])
    clean = [list(c) for c in split["captions"]]
    noisy, truth = inject_noise(clean, labels, args.noise, args.mode, args.seed)
    columns = ["image", "label"] if config.positive_groups == "label" else ["image"]
    dataset = split.select_columns(columns).add_column("subtexts", noisy)

    started = time.time()
    accelerator = trainer_accelerator(config, config.output_dir)
    model, processor = load_scio_model(config, accelerator, dataset)
    ScioTrainer(model, processor, dataset, config, accelerator).run()
    after_screening, after_reconstruction = load_text_version(config.output_dir, 1), load_text_version(config.output_dir, 2)
    log = [json.loads(line) for line in (Path(config.output_dir) / "metrics.jsonl").read_text().splitlines()]
    words = class_words(clean, labels)
    results = {
        "data": args.data, "mode": args.mode, "noise": args.noise, "seed": args.seed, "images": len(split),
        "config": args.config, "overrides": overrides, "positive_groups": config.positive_groups,
        "screening": screening_metrics(truth, [list(f) for f in after_screening["noise"]]),
        "reconstruction": reconstruction_metrics(truth, labels, [list(t) for t in after_screening["subtexts"]],
                                                 [list(t) for t in after_reconstruction["subtexts"]],
                                                 [list(r) for r in after_reconstruction["refined"]], words),
        "train_losses": [{k: r.get(k) for k in ("unit", "stage", "loss_itc", "loss_itm", "loss_mlm")}
                         for r in log if r["kind"] == "train"],
        "wall_s": round(time.time() - started, 1),
    }
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    write_json(out / "noise_results.json", results)  # atomic: a failed run never leaves a torn results file
    print(f"SCIO noise benchmark: {args.mode}, {args.noise:.0%} of {len(split)} train images ({results['wall_s']} s)")
    print(f"{'unit':<9}{'precision':>10}{'recall':>8}{'F1':>7}{'flagged':>9}{'noisy':>7}{'total':>7}{'base':>7}")
    for unit, m in results["screening"].items():
        print(f"{unit:<9}{m['precision']:>10.3f}{m['recall']:>8.3f}{m['f1']:>7.3f}{m['flagged']:>9}{m['noisy']:>7}"
              f"{m['total']:>7}{m['base_rate']:>7.3f}")
    for name, value in results["reconstruction"].items():
        print(f"  {name}: {value}")
    print(f"results: {out / 'noise_results.json'}")
    return 0


if __name__ == "__main__":
    sys.exit(run_cli(main))
