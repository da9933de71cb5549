"""Command line: ``python -m hct <command> ...``. Each area of the library adds its own commands."""

from __future__ import annotations

import argparse
import importlib
import sys

from hct.errors import HCTError

# Each module defines ``add_commands(subparsers)``; a command's handler is stored as ``func``.
COMMAND_MODULES = (
    "hct.data.cli",
    "hct.models.cli",
    "hct.explain.cli",
    "hct.eval.cli",
    "hct.train.cli",
    "hct.pacs.cli",
)


def build_parser() -> argparse.ArgumentParser:
    """The ``python -m hct`` argument parser with every area's commands."""
    parser = argparse.ArgumentParser(prog="python -m hct", description=__doc__)
    subparsers = parser.add_subparsers(dest="command", required=True)
    for name in COMMAND_MODULES:
        importlib.import_module(name).add_commands(subparsers)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return int(args.func(args) or 0)
    except HCTError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
