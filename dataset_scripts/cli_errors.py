"""User errors on the command line: `error: <what>` on stderr, exit code 2, no traceback (`--debug` shows it).

Shared by the data CLI (`python -m dataset_scripts`) and the trainers' CLIs (train/common/cli.py); it imports nothing
heavy, so either can use it.
"""

from __future__ import annotations

import errno
import sys
from collections.abc import Callable

from .errors import DatasetBuildError

# errors that mean bad input (an option value, a path, a data file, the network), not a bug in this package
USER_ERRORS = (ValueError, FileNotFoundError, FileExistsError, NotADirectoryError, IsADirectoryError,
               PermissionError, ConnectionError, DatasetBuildError)


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
