"""SARCLIP CLI: `python -m train {fit,quickstart,eval,push}` (= `python -m train.sarclip ...`); works the same under
`accelerate launch -m train ...`."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

CONFIGS = Path(__file__).parent / "configs"
QUICKSTART = CONFIGS / "quickstart.yaml"


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m train", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)
    fit = commands.add_parser("fit", help="train; any TrainConfig field can be overridden with --field value")
    fit.add_argument("--config", help="YAML config (see train/sarclip/configs/)")
    quick = commands.add_parser("quickstart", help="tiny SARCLIP on the synthetic SAR set on CPU (~2 min)")
    quick.add_argument("--config", default=str(QUICKSTART), help=argparse.SUPPRESS)
    evaluate = commands.add_parser("eval", help="evaluate a model folder on a data set")
    evaluate.add_argument("model_dir", type=Path)
    evaluate.add_argument("--data", required=True, help="'synthetic', a load_dataset folder/repo or a CSV")
    evaluate.add_argument("--train-split", default="train", help="split the linear probe is fitted on")
    evaluate.add_argument("--eval-split", default="test")
    evaluate.add_argument("--tasks", default="retrieval,zero_shot,linear_probe")
    evaluate.add_argument("--batch-size", type=int, default=64)
    evaluate.add_argument("--out", type=Path, help="results folder (default: MODEL_DIR/eval_<data name>)")
    push = commands.add_parser("push", help="upload a finished run (its final model) to the Hub")
    push.add_argument("run_dir", type=Path)
    push.add_argument("repo")
    push.add_argument("--private", action="store_true")
    return parser


def main(argv: list[str] | None = None) -> int:
    args, rest = _parser().parse_known_args(argv)
    if args.command in ("fit", "quickstart"):
        from accelerate import PartialState

        from .config import TrainConfig
        from .trainer import fit

        result = fit(TrainConfig.from_cli(args.config, rest))
        if not PartialState().is_main_process:
            return 0
        print(f"model: {result.model_dir} (AutoModel.from_pretrained('{result.model_dir}', trust_remote_code=True))")
        if result.metrics:
            print(f"results: {result.model_dir / 'eval_results.json'}")
            for name, value in sorted(result.metrics.items()):
                print(f"  {name}: {value:.4f}")
        return 0
    if rest:
        raise SystemExit(f"error: unrecognized arguments: {' '.join(rest)}")
    if args.command == "eval":
        from .config import TrainConfig
        from .data import load_image_text_dataset
        from .model_io import load_trained_model
        from ..evaluation.dataset_eval import evaluate_model

        model, processor = load_trained_model(args.model_dir)
        dataset = load_image_text_dataset(TrainConfig(data=args.data))
        out = args.out or args.model_dir / f"eval_{Path(args.data).name}"
        metrics = evaluate_model(model, processor, dataset, args.train_split, args.eval_split,
                                 args.tasks.split(","), out, args.batch_size)
        print(json.dumps(metrics, indent=2))
        print(f"results: {out}")
        return 0
    from ..common.hub import push_model_dir

    model_dir = args.run_dir / "final" if (args.run_dir / "final").is_dir() else args.run_dir
    push_model_dir(model_dir, args.repo, private=args.private)
    print(f"pushed {model_dir} to {args.repo}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
