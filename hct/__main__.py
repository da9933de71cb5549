"""Command line: ``python -m hct <command> ...``. Each area of the library adds its own commands."""

from __future__ import annotations

import argparse
import importlib
import logging
import os
import sys

from hct.errors import HCTError
from hct.paths import describe_os_error

# Each module defines ``add_commands(subparsers)``; a command's handler is stored as ``func``.
COMMAND_MODULES = (
    "hct.data.cli",
    "hct.models.cli",
    "hct.explain.cli",
    "hct.eval.cli",
    "hct.train.cli",
    "hct.data.pacs.cli",
)


def build_parser() -> argparse.ArgumentParser:
    """The ``python -m hct`` argument parser with every area's commands."""
    parser = argparse.ArgumentParser(prog="python -m hct", description=__doc__)
    subparsers = parser.add_subparsers(dest="command", required=True)
    for name in COMMAND_MODULES:
        importlib.import_module(name).add_commands(subparsers)
    return parser


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    try:
        args = build_parser().parse_args(argv)
    except SystemExit as exit:
        if exit.code:
            _dash_hint(argv)
        raise
    logging.basicConfig(level=logging.INFO, format="%(message)s")  # the library's progress notes, on stderr
    try:
        return int(args.func(args) or 0)
    except HCTError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    except BrokenPipeError:  # the reader of the output (e.g. `| head`) has gone: stop quietly
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())  # nothing left to flush at exit
        return 141  # as a shell reports a command ended by SIGPIPE
    except OSError as err:  # a file it was given cannot be used: a name too long, a permission, a full disk
        print(f"error: {describe_os_error(err)}", file=sys.stderr)
        return 2


def _dash_hint(argv: list[str]) -> None:
    """After a usage error: the arguments that name existing files but start with '-' (read as options)."""
    before = argv[: argv.index("--")] if "--" in argv else argv
    for arg in before:
        if arg.startswith("-") and os.path.exists(arg):
            print(
                f"note: {arg} was read as an option; to name a file that starts with '-', put -- before it "
                f"(python -m hct {argv[0] if argv else 'COMMAND'} ... -- {arg}) or write ./{arg}",
                file=sys.stderr,
            )


if __name__ == "__main__":
    sys.exit(main())
