"""SARCLIP CLI: `python -m train {fit,quickstart,eval,push,index,search}` (= `python -m train.sarclip ...`); works the same under
`accelerate launch -m train ...`."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from ..common.cli import add_fit_command, add_push_command, cli_parser, config_fields_help, push_run, run_cli
from dataset_scripts.captions.class_names import load_class_words

from ..search.cli import add_search_commands, run_search_command
from .config import TrainConfig

CONFIGS = Path(__file__).parent / "configs"
QUICKSTART = CONFIGS / "quickstart.yaml"


def _parser() -> argparse.ArgumentParser:
    parser, commands = cli_parser("python -m train", __doc__)
    add_fit_command(commands, TrainConfig, "train SARCLIP as configured", "train/sarclip/configs/")
    quick = commands.add_parser("quickstart", help="tiny SARCLIP on the synthetic SAR set on CPU (~2 min)",
                                description=f"fit with {QUICKSTART.relative_to(CONFIGS.parents[2])}; any field can "
                                            "be overridden with --field value",
                                epilog=config_fields_help(TrainConfig, TrainConfig.from_yaml(QUICKSTART)),
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    quick.add_argument("--config", default=str(QUICKSTART), help=argparse.SUPPRESS)
    evaluate = commands.add_parser("eval", help="evaluate a model folder on a data set",
                                  formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    evaluate.add_argument("model_dir", type=Path, help="a run's final/ folder (full model or LoRA adapters)")
    evaluate.add_argument("--data", required=True, help="'synthetic', a load_dataset folder / Hub id or a caption "
                                                         "table (see dataset_scripts.loading)")
    evaluate.add_argument("--train-split", default="train", help="split the linear probe is fitted on")
    evaluate.add_argument("--eval-split", default="test", help="split evaluated")
    evaluate.add_argument("--tasks", default="retrieval,zero_shot,linear_probe", help="comma-separated tasks")
    evaluate.add_argument("--batch-size", type=int, default=64, help="images or texts per forward")
    evaluate.add_argument("--out", type=Path, help="results folder; none: eval_<data name> beside MODEL_DIR (never inside it: a later push uploads the model folder as it is)")
    evaluate.add_argument("--seed", type=int, default=None,
                          help="seed of a held-out split (data without an eval split); default: the run's, read from "
                               "MODEL_DIR/train_config.yaml when it trained on the same data, else 0")
    evaluate.add_argument("--collapse-cosine", type=float, default=0.999,
                          help="flag the model as collapsed (`collapsed: true`) when the mean pairwise cosine of its "
                               "test image embeddings exceeds this")
    evaluate.add_argument("--class-words", default=None,
                          help="YAML/JSON mapping class name -> words for the zero-shot prompts; default: the run's "
                               "class_words when it trained on the same data, else the class names")
    evaluate.add_argument("--allow-outside-data", action="store_true",
                          help="let a --data table or image folder name images outside its folder (default: the "
                               "run's allow_outside_data when it trained on the same data)")
    add_push_command(commands, "final", "org/sarclip-vit-b-32")
    add_search_commands(commands)
    return parser


def main(argv: list[str] | None = None) -> int:
    return run_cli(_main, argv)


def _main(argv: list[str]) -> int:
    args, rest = _parser().parse_known_args(argv)
    if args.command in ("fit", "quickstart"):
        from accelerate import PartialState

        from .trainer import fit

        result = fit(TrainConfig.from_cli(args.config, rest))
        if not PartialState().is_main_process:
            return 0
        print(f"model: {result.model_dir} (AutoModel.from_pretrained('{result.model_dir}', trust_remote_code=True))")
        if result.metrics:
            print(f"results: {result.model_dir / 'eval_results.json'}")
            for name, value in sorted(result.metrics.items()):  # numbers, and flags or None (one test image)
                shown = f"{value:.4f}" if isinstance(value, float) else value
                print(f"  {name}: {shown}")
        return 0
    if rest:
        raise ValueError(f"unrecognized arguments: {' '.join(rest)}")
    if args.command == "eval":
        from .data import eval_data_config, load_image_text_dataset
        from .model_io import load_trained_model
        from ..evaluation.dataset_eval import evaluate_model

        model, processor = load_trained_model(args.model_dir)
        data = eval_data_config(args.model_dir, args.data, args.seed, args.allow_outside_data, args.class_words)
        dataset = load_image_text_dataset(data)
        out = args.out or args.model_dir.resolve().parent / f"eval_{Path(args.data).name}"
        metrics = evaluate_model(model, processor, dataset, args.train_split, args.eval_split,
                                 args.tasks.split(","), out, args.batch_size, load_class_words(data.class_words),
                                 collapse_cosine=args.collapse_cosine)
        print(json.dumps(metrics, indent=2))
        print(f"results: {out}")
        return 0
    if args.command in ("index", "search"):
        return run_search_command(args)
    return push_run(args, "final")


if __name__ == "__main__":
    sys.exit(main())
