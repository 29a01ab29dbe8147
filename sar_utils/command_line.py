"""What every command line of the package shares (data CLIs, trainers, converters, bench scripts): user errors as
`error: <what>` on stderr, exit code 2, no traceback (`--debug` shows it), and an `ArgumentParser` that takes each
long option as `--flag_name` or `--flag-name`. It imports nothing heavy, so any CLI can use it.
"""

from __future__ import annotations

import argparse
import errno
import sys
from collections.abc import Callable


# errors that mean bad input (an option value, a path, a data file, the network), not a bug in this package; the
# package's own user errors (e.g. `dataset_scripts.errors.DatasetBuildError`) are ValueErrors
USER_ERRORS = (ValueError, FileNotFoundError, FileExistsError, NotADirectoryError, IsADirectoryError,
               PermissionError, ConnectionError)
# the same for libraries' error types, matched by class name so that this module imports none of them: a malformed
# YAML config, a damaged safetensors file, a data file `datasets` cannot parse, an unknown CRS, a damaged pickle
USER_ERROR_NAMES = frozenset({"YAMLError", "SafetensorError", "DatasetGenerationError", "CRSError", "UnpicklingError"})
# OSErrors of the machine, not of this package: a read-only file system, a quota, too many open files
USER_OS_ERRNOS = frozenset({errno.EROFS, errno.EDQUOT, errno.EMFILE, errno.EACCES})
# transformers and huggingface_hub report a folder without the files `from_pretrained` needs as a bare OSError
MISSING_MODEL_FILE_MESSAGES = ("Can't load", "does not appear to have a file named", "is not a local folder and is not "
                               "a valid model identifier")


class HelpFormatter(argparse.RawDescriptionHelpFormatter, argparse.ArgumentDefaultsHelpFormatter):
    """Descriptions as written, and every option's default in `--help`."""


class ArgumentParser(argparse.ArgumentParser):
    """`argparse.ArgumentParser` whose long options take either spelling, `--flag_name` or `--flag-name` (also as
    `--flag-name=value`) and whose `--help` shows each default; sub-command parsers made with `add_subparsers` are
    of this class too."""

    def __init__(self, *args, **kwargs):
        kwargs.setdefault("formatter_class", HelpFormatter)
        super().__init__(*args, **kwargs)

    def parse_known_args(self, args=None, namespace=None):
        args = sys.argv[1:] if args is None else list(args)
        end = args.index("--") if "--" in args else len(args)
        return super().parse_known_args([self._known_spelling(arg) for arg in args[:end]] + args[end:], namespace)

    def _known_spelling(self, arg: str) -> str:
        if not arg.startswith("--") or len(arg) == 2:
            return arg
        flag, equals, value = arg.partition("=")
        if flag in self._option_string_actions:
            return arg
        for other in ("--" + flag[2:].replace("_", "-"), "--" + flag[2:].replace("-", "_")):
            if other in self._option_string_actions:
                return other + equals + value
        return arg


def run_cli(main: Callable[[list[str]], int], argv: list[str] | None = None) -> int:
    """`main(argv)`, with user errors printed as `error: ...` (exit code 2) unless `--debug` is given."""
    argv = list(sys.argv[1:] if argv is None else argv)
    debug = "--debug" in argv
    try:
        return main([arg for arg in argv if arg != "--debug"])
    except KeyboardInterrupt:
        if debug:
            raise
        print("interrupted: outputs are written to a temporary place and renamed when complete, so the last complete "
              "checkpoint or output is intact (a training run continues with --resume)", file=sys.stderr)
        return 130
    except OSError as err:
        if debug or err.errno != errno.ENOSPC:
            if debug or not (isinstance(err, USER_ERRORS) or err.errno in USER_OS_ERRNOS
                             or any(message in str(err) for message in MISSING_MODEL_FILE_MESSAGES)):
                raise
            return _report(err)
        print(f"error: no space left on device while writing {err.filename or 'the output'}; free some space "
              "and run again (the last complete checkpoint or output is intact)", file=sys.stderr)
        return 2
    except USER_ERRORS as err:
        if debug:
            raise
        return _report(err)
    except Exception as err:
        if debug or not any(cls.__name__ in USER_ERROR_NAMES for cls in type(err).__mro__):
            raise
        return _report(err)


def _report(err: BaseException) -> int:
    print(f"error: {err}", file=sys.stderr)
    return 2
