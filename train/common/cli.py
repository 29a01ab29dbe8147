"""What both trainers' command lines share: a `fit` sub-command whose `--help` lists every run-config field with
its default, and user errors reported as `error: <what>` on stderr with exit code 2 and no traceback (`--debug`
shows it)."""

from __future__ import annotations

import argparse
import dataclasses

from sar_utils.command_line import ArgumentParser, run_cli

def config_fields_help(config_cls: type, defaults=None) -> str:
    """One line per config field: `--name (default: value): meaning` (the meaning from the field's `help`
    metadata, when it has one); `defaults`: a config instance whose values are shown instead (e.g. a preset YAML)."""
    lines = ["run-config fields (YAML keys; each can be overridden with --field value):"]
    for field in dataclasses.fields(config_cls):
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


def cli_parser(prog: str, description: str | None) -> tuple[argparse.ArgumentParser, argparse._SubParsersAction]:
    parser = ArgumentParser(prog=prog, description=description)
    parser.add_argument("--debug", action="store_true", help="show the traceback of an error (default: off)")
    return parser, parser.add_subparsers(dest="command", required=True)


__all__ = ["add_fit_command", "cli_parser", "config_fields_help", "run_cli"]
