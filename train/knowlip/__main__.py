"""CLI: `python -m train.knowlip fit --config train/knowlip/configs/tiny_synthetic.yaml [--field value ...]`;
works the same under `accelerate launch -m train.knowlip fit ...`.
`python -m train.knowlip eval MODEL_DIR --tasks retrieval,captioning,vqa --data DIR|synthetic --vqa-data DIR --out DIR`
evaluates a saved model (see `train.knowlip.evaluate`)."""

from __future__ import annotations

import argparse
import sys

from ..common.cli import add_fit_command, cli_parser, run_cli
from .run_config import ScioRunConfig


def _parser() -> argparse.ArgumentParser:
    parser, commands = cli_parser("python -m train.knowlip", __doc__)
    add_fit_command(commands, ScioRunConfig, "run SCIO (three stages) as configured", "train/knowlip/configs/")
    evaluate = commands.add_parser("eval", help="retrieval / captioning / VQA metrics of a saved model",
                                     formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    evaluate.add_argument("model_dir", help="a model folder with its processor (e.g. a SCIO run's model/)")
    evaluate.add_argument("--tasks", default="retrieval,captioning,vqa", help="comma-separated tasks")
    evaluate.add_argument("--data", help="image-text dataset folder (split test) or 'synthetic'")
    evaluate.add_argument("--vqa-data", help="VQA folder from `python -m dataset_scripts.geovl vqa`")
    evaluate.add_argument("--out", required=True, help="folder for eval_results.json and the generated texts")
    evaluate.add_argument("--batch-size", type=int, default=32, help="images or texts per forward")
    evaluate.add_argument("--k", type=int, default=16, help="ITC candidates per query re-ranked by ITM")
    return parser


def _evaluate(args: argparse.Namespace) -> int:
    import json

    from .evaluate import RESULTS_FILE, evaluate_knowlip

    tasks = [task.strip() for task in args.tasks.split(",") if task.strip()]
    results = evaluate_knowlip(args.model_dir, None, tasks, args.out, data=args.data, vqa_data=args.vqa_data,
                               batch_size=args.batch_size, k=args.k)
    print(json.dumps(results, indent=2))
    print(f"results: {args.out}/{RESULTS_FILE}")
    return 0


def main(argv: list[str] | None = None) -> int:
    return run_cli(_main, argv)


def _main(argv: list[str]) -> int:
    args, rest = _parser().parse_known_args(argv)
    if args.command == "eval":
        if rest:
            raise ValueError(f"eval: unrecognized arguments {' '.join(rest)}")
        return _evaluate(args)
    from accelerate import PartialState

    from .fit import fit_scio

    result = fit_scio(ScioRunConfig.from_cli(args.config, rest))
    if PartialState().is_main_process:
        noise = sum(map(sum, result.texts["noise"]))
        refined = sum(map(sum, result.texts["refined"]))
        print(f"model: {result.model_dir}")
        print(f"texts: {len(result.texts)} images, {refined} fragments refined, {noise} left in the noise pool")
    return 0


if __name__ == "__main__":
    sys.exit(main())
