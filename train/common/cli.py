"""What both trainers' command lines share: a `fit` sub-command whose `--help` lists every run-config field with
its default, and user errors reported as `error: <what>` on stderr with exit code 2 and no traceback (`--debug`
shows it)."""

from __future__ import annotations

import argparse
import dataclasses
import errno
import sys
from collections.abc import Callable

from dataset_scripts.errors import DatasetBuildError

# errors that mean bad input (a config value, a path, a data file), not a bug in this package
USER_ERRORS = (ValueError, FileNotFoundError, FileExistsError, NotADirectoryError, IsADirectoryError,
               PermissionError, ConnectionError, DatasetBuildError)


def config_fields_help(config_cls: type) -> str:
    """One line per config field: `--name (default: value): meaning` (the meaning from the field's `help`
    metadata, when it has one)."""
    lines = ["run-config fields (YAML keys; each can be overridden with --field value):"]
    for field in dataclasses.fields(config_cls):
        default = field.default_factory() if field.default is dataclasses.MISSING else field.default
        meaning = field.metadata.get("help")
        lines.append(f"  --{field.name} (default: {default!r})" + (f": {meaning}" if meaning else ""))
    return "\n".join(lines)


def add_fit_command(commands, config_cls: type, help: str, configs_dir: str) -> argparse.ArgumentParser:
    """The `fit` sub-command: `--config YAML` plus `--field value` overrides of `config_cls`."""
    fit = commands.add_parser("fit", help=help, description=help, epilog=config_fields_help(config_cls),
                              formatter_class=argparse.RawDescriptionHelpFormatter)
    fit.add_argument("--config", help=f"YAML config (see {configs_dir}); default: the run-config defaults")
    return fit


def cli_parser(prog: str, description: str | None) -> tuple[argparse.ArgumentParser, argparse._SubParsersAction]:
    parser = argparse.ArgumentParser(prog=prog, description=description,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--debug", action="store_true", help="show the traceback of an error (default: off)")
    return parser, parser.add_subparsers(dest="command", required=True)


def run_cli(main: Callable[[list[str]], int], argv: list[str] | None = None) -> int:
    """`main(argv)`, with user errors printed as `error: ...` (exit code 2) unless `--debug` is given."""
    argv = list(sys.argv[1:] if argv is None else argv)
    debug = "--debug" in argv
    try:
        return main([arg for arg in argv if arg != "--debug"])
    except OSError as err:
        if debug or err.errno != errno.ENOSPC:
            if debug or not isinstance(err, USER_ERRORS):
                raise
            return _report(err)
        print(f"error: no space left on device while writing {err.filename or 'the output'}; free some space "
              "and run again (the last complete checkpoint or output is intact)", file=sys.stderr)
        return 2
    except USER_ERRORS as err:
        if debug:
            raise
        return _report(err)


def _report(err: BaseException) -> int:
    print(f"error: {err}", file=sys.stderr)
    return 2
