"""CLI of SAR-KnowLIP training (each also runs under `accelerate launch -m train.knowlip ...`):

  fit       SCIO pre-training: `fit --config train/knowlip/configs/tiny_synthetic.yaml [--field value ...]`
  finetune  downstream fine-tuning + evaluation: `finetune --task classification|retrieval|captioning|vqa
            --model MODEL_DIR --data DATA [--field value ...]` (see `train.knowlip.finetune`)
  eval      `eval MODEL_DIR --tasks retrieval,captioning,vqa --data DIR|synthetic --vqa-data DIR --out DIR`
  push      `push RUN_DIR REPO_ID [--private]`: upload a finished run's model/ to the Hub
  chain     GeoTIFF -> SRC tiles -> screening -> HCoT captions -> SCIO -> evaluation (see `train.knowlip.chain`)
"""

from __future__ import annotations

import argparse
import sys

from ..common.cli import add_fit_command, add_push_command, cli_parser, config_fields_help, push_run, run_cli
from .run_config import ScioRunConfig


def _parser() -> argparse.ArgumentParser:
    parser, commands = cli_parser("python -m train.knowlip", __doc__)
    add_fit_command(commands, ScioRunConfig, "run SCIO (three stages) as configured", "train/knowlip/configs/")
    finetune = commands.add_parser("finetune", help="fine-tune a SAR-KnowLIP model on a downstream task, evaluate",
                                   epilog=config_fields_help(_finetune_config()),
                                   formatter_class=argparse.RawDescriptionHelpFormatter)
    finetune.add_argument("--config", help="YAML config; default: the fields' defaults")
    chain = commands.add_parser("chain", help="GeoTIFF -> HCoT captions -> SCIO -> evaluation, offline",
                                formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    _chain_arguments(chain)
    evaluate = commands.add_parser("eval", help="retrieval / captioning / VQA / zero-shot / linear-probe metrics of a "
                                                "saved model",
                                     formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    evaluate.add_argument("model_dir", help="a model folder with its processor (e.g. a SCIO run's model/)")
    evaluate.add_argument("--tasks", default="retrieval,captioning,vqa", help="comma-separated tasks")
    evaluate.add_argument("--data", help="image-text dataset folder (split test) or 'synthetic'; zero_shot, "
                                         "linear_probe: labelled data as `python -m train eval` takes it")
    evaluate.add_argument("--vqa-data", help="VQA folder from `python -m dataset_scripts.geovl vqa`")
    evaluate.add_argument("--out", required=True, help="folder for eval_results.json and the generated texts")
    evaluate.add_argument("--batch-size", type=int, default=32, help="images or texts per forward")
    evaluate.add_argument("--k", type=int, default=16, help="ITC candidates per query re-ranked by ITM")
    evaluate.add_argument("--allow-outside-data", action="store_true",
                          help="let a --data table or image folder name images outside its folder")
    add_push_command(commands, "model", "org/sar-knowlip-base")
    return parser


def _evaluate(args: argparse.Namespace) -> int:
    import json

    from .evaluate import RESULTS_FILE, evaluate_knowlip

    tasks = [task.strip() for task in args.tasks.split(",") if task.strip()]
    results = evaluate_knowlip(args.model_dir, None, tasks, args.out, data=args.data, vqa_data=args.vqa_data,
                               batch_size=args.batch_size, k=args.k, allow_outside_data=args.allow_outside_data)
    print(json.dumps(results, indent=2))
    print(f"results: {args.out}/{RESULTS_FILE}")
    return 0


def _finetune_config():
    from .finetune import FinetuneConfig

    return FinetuneConfig


def _chain_arguments(parser: argparse.ArgumentParser) -> None:
    from .chain import add_chain_arguments

    add_chain_arguments(parser)


def main(argv: list[str] | None = None) -> int:
    return run_cli(_main, argv)


def _main(argv: list[str]) -> int:
    args, rest = _parser().parse_known_args(argv)
    if args.command in ("eval", "chain") and rest:
        raise ValueError(f"{args.command}: unrecognized arguments {' '.join(rest)}")
    if args.command == "eval":
        return _evaluate(args)
    if args.command == "chain":
        from .chain import run_chain_cli

        return run_chain_cli(args)
    if args.command == "push":
        if rest:
            raise ValueError(f"push: unrecognized arguments {' '.join(rest)}")
        return push_run(args, "model")
    if args.command == "finetune":
        import json

        from .finetune import finetune

        results = finetune(_finetune_config().from_cli(args.config, rest))
        print(json.dumps({k: v for k, v in results.items() if k != "config"}, indent=2))
        return 0
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
