"""CLI: `python -m train.knowlip fit --config train/knowlip/configs/tiny_synthetic.yaml [--field value ...]`;
works the same under `accelerate launch -m train.knowlip fit ...`."""

from __future__ import annotations

import argparse
import sys


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m train.knowlip", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)
    fit = commands.add_parser("fit", help="run SCIO; any ScioRunConfig field can be overridden with --field value")
    fit.add_argument("--config", help="YAML config (see train/knowlip/configs/)")
    return parser


def main(argv: list[str] | None = None) -> int:
    args, rest = _parser().parse_known_args(argv)
    from accelerate import PartialState

    from .fit import fit_scio
    from .run_config import ScioRunConfig

    result = fit_scio(ScioRunConfig.from_cli(args.config, rest))
    if PartialState().is_main_process:
        noise = sum(map(sum, result.texts["noise"]))
        refined = sum(map(sum, result.texts["refined"]))
        print(f"model: {result.model_dir}")
        print(f"texts: {len(result.texts)} images, {refined} fragments refined, {noise} left in the noise pool")
    return 0


if __name__ == "__main__":
    sys.exit(main())
