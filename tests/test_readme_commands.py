"""Every ``python -m hct`` command the README shows parses with the real command line (``hct.__main__``),
so the README cannot drift from the options the commands take; its Architecture section is the tree."""

import argparse
import re
import shlex

import pytest

from hct.__main__ import build_parser
from tests.paths import REPO

README = REPO / "README.md"


def readme_commands() -> list[str]:
    """The arguments after ``python -m hct`` of every command in the README: inline code, code blocks and
    ``torchrun ... -m hct -- ...`` lines; ``a\\|b`` alternatives become ``a``."""
    text = README.read_text()
    found = re.findall(r"`python -m hct ([^`]*)`", text)
    found += re.findall(r"^python -m hct (.*)$", text, flags=re.MULTILINE)
    found += re.findall(r"-m hct -- ([^`]*)`", text)
    return sorted({re.sub(r"\\\|[\w-]+", "", command).strip() for command in found})


def _subcommand_names(parser: argparse.ArgumentParser) -> dict[str, argparse.ArgumentParser]:
    actions = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
    return actions[0].choices if actions else {}


def test_the_readme_shows_the_commands():
    assert len(readme_commands()) >= 20


@pytest.mark.parametrize("command", readme_commands(), ids=lambda command: command[:50])
def test_a_readme_command_parses(command):
    argv = shlex.split(command)
    if argv == ["--help"]:
        return
    parser = build_parser()
    if not any(a.startswith("-") for a in argv) and argv[-1] in ("...",):
        argv = argv[:-1]
    try:
        parser.parse_args(argv)
    except SystemExit:
        # a command named in prose without its arguments: the command itself must exist
        level = parser
        for word in argv:
            choices = _subcommand_names(level)
            assert word in choices, f"README names `python -m hct {command}`, but {word!r} is not a command"
            level = choices[word]
        assert not any(a.startswith("-") for a in argv), f"`python -m hct {command}` does not parse"


def test_the_readme_architecture_is_the_tree():
    """The README's Architecture table lists the layers of ``tests/test_codebase_rules.py`` in their order, and
    every file or folder of the project the README names exists (``hct/...``, ``app/...``, ``pages/...``)."""
    from tests.test_codebase_rules import LAYERS

    text = README.read_text()
    section = text[text.index("## Architecture") :]
    rows = re.findall(r"^\| ([a-zA-Z ]+) \| `", section, flags=re.MULTILINE)
    assert rows == [name for name, _ in LAYERS]
    named = set(re.findall(r"(?<![\w/.])((?:hct|app|pages|tests|bench)/[\w/.]*\w/?)", text))
    missing = sorted(path for path in named if "*" not in path and not (REPO / path).exists())
    assert not missing, f"the README names paths that do not exist: {missing}"
