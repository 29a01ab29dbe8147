"""What both trainers' command lines share: a `fit` sub-command whose `--help` lists every run-config field with
its default, and user errors reported as `error: <what>` on stderr with exit code 2 and no traceback (`--debug`
shows it)."""

from __future__ import annotations

import argparse
import dataclasses
from pathlib import Path

from sar_utils.command_line import ArgumentParser, run_cli

from .config import TrainingOptions

def config_fields_help(config_cls: type, defaults=None) -> str:
    """One line per config field: `--name (default: value): meaning` (the meaning from the field's `help`
    metadata, when it has one); `defaults`: a config instance whose values are shown instead (e.g. a preset YAML)."""
    lines = ["run-config fields (YAML keys; each can be overridden with --field value):"]
    shared = {field.name for field in dataclasses.fields(TrainingOptions)}  # every trainer's: listed last
    for field in sorted(dataclasses.fields(config_cls), key=lambda field: field.name in shared):
        if defaults is not None:
            default = getattr(defaults, field.name)
        else:
            default = field.default_factory() if field.default is dataclasses.MISSING else field.default
        meaning = field.metadata.get("help")
        lines.append(f"  --{field.name} (default: {default!r})" + (f": {meaning}" if meaning else ""))
    return "\n".join(lines)


def add_fit_command(commands, config_cls: type, help: str, configs_dir: str) -> argparse.ArgumentParser:
    """The `fit` sub-command: `--config YAML` plus `--field value` overrides of `config_cls`."""
    fit = commands.add_parser("fit", help=help, description=help, epilog=config_fields_help(config_cls))
    fit.add_argument("--config", help=f"YAML config (see {configs_dir}); default: the run-config defaults")
    return fit


def add_push_command(commands, model_folder: str, example_repo: str) -> argparse.ArgumentParser:
    """The `push` sub-command of both trainers: a run folder (its `model_folder`/ goes up) or a model folder."""
    push = commands.add_parser("push", help=f"upload a finished run (its {model_folder}/ folder) to the Hub")
    push.add_argument("run_dir", type=Path, help=f"a run folder (its {model_folder}/ is pushed) or a model folder")
    push.add_argument("repo", help=f"Hub model repo id, e.g. {example_repo}")
    push.add_argument("--private", action="store_true", help="create the repo private")
    push.add_argument("--base_model", metavar="REPO_ID", default=None,
                      help="LoRA runs: the Hub repo of the base model, named by the pushed adapters and card instead "
                           "of its local folder (required when the base is a local folder)")
    return push


def push_run(args: argparse.Namespace, model_folder: str) -> int:
    """Run the `push` sub-command (`add_push_command`)."""
    from .hub import push_model_dir

    model_dir = args.run_dir / model_folder if (args.run_dir / model_folder).is_dir() else args.run_dir
    push_model_dir(model_dir, args.repo, private=args.private, base_model=args.base_model)
    print(f"pushed {model_dir} to {args.repo}")
    return 0


def cli_parser(prog: str, description: str | None) -> tuple[argparse.ArgumentParser, argparse._SubParsersAction]:
    parser = ArgumentParser(prog=prog, description=description)
    parser.add_argument("--debug", action="store_true", help="show the traceback of an error (default: off)")
    return parser, parser.add_subparsers(dest="command", required=True)


__all__ = ["add_fit_command", "add_push_command", "cli_parser", "config_fields_help", "push_run", "run_cli"]
