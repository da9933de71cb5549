"""The folders a shared server may read for its visitors (its data roots), and the one check that
confines every path typed into the app to them.

The roots are the repository's ``data/``, ``runs/`` and ``checkpoints/``, the built-in samples, and
the folders listed in ``HCT_DATA_ROOTS`` (separated by ``os.pathsep``, ``:`` on Linux). A path is
resolved before the check (symlinks and ``..`` followed; a relative path is relative to the
repository), so neither leads outside. A refused path gets the same message whether or not it
exists. The command line is never confined: its user already has a shell.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from hct.errors import ConfigError
from hct.paths import check_name

if TYPE_CHECKING:  # the data sets' modules import this one
    from hct.data.records import ImageRecord

ROOTS_ENV = "HCT_DATA_ROOTS"
REPOSITORY = Path(__file__).resolve().parents[3]
DEFAULT_FOLDERS = ("data", "runs", "checkpoints")
_WHERE = (
    "this server reads only under its data roots (the repository's data/, runs/ and checkpoints/, the "
    f"built-in samples, and the folders in {ROOTS_ENV}). Put the data there, or ask whoever runs the server "
    f"to add its folder to {ROOTS_ENV}"
)


class OutsideDataRoots(ConfigError):
    """A path (or a path a manifest row names) lies outside the data roots; the message names the setting."""


def _real(path: str | Path) -> Path:
    """``path`` with symlinks and ``..`` followed; relative to the repository."""
    return Path(os.path.realpath(REPOSITORY / os.fspath(path)))


def data_roots() -> tuple[Path, ...]:
    """The resolved data roots: the defaults, then each folder in ``HCT_DATA_ROOTS``."""
    from hct.data.sets.samples import samples_folder

    extra = [p.strip() for p in os.environ.get(ROOTS_ENV, "").split(os.pathsep) if p.strip()]
    folders = [*(REPOSITORY / f for f in DEFAULT_FOLDERS), samples_folder(), *extra]
    return tuple(dict.fromkeys(_real(f) for f in folders))


def confine(path: str | Path, roots: Sequence[Path] | None = None) -> Path:
    """``path`` resolved, when it lies under one of ``roots`` (default :func:`data_roots`); else
    :class:`OutsideDataRoots`, with the same message whether or not the path exists
    (:class:`~hct.errors.PathError` for a name too long to be a path)."""
    roots = data_roots() if roots is None else roots
    text = os.fspath(path).strip()
    if "\x00" not in text:
        check_name(text)  # a name too long is refused as such (it reveals nothing of the file system)
    try:
        real = _real(text) if text else None
    except (ValueError, OSError):  # e.g. a NUL byte
        real = None
    if real is None or not any(real.is_relative_to(root) for root in roots):
        raise OutsideDataRoots(f"{text or 'An empty path'} is not readable here: {_WHERE}.")
    return real


def confine_records(
    records: Sequence[ImageRecord], source: str | Path, roots: Sequence[Path] | None = None
) -> list[ImageRecord]:
    """``records`` when every image and mask they name lies under ``roots``; else
    :class:`OutsideDataRoots` naming ``source`` and the first such row (whether or not its file exists)."""
    roots = data_roots() if roots is None else roots
    for record in records:
        for path in (record.path, *record.finding_masks):
            try:
                confine(path, roots)
            except OutsideDataRoots:
                raise OutsideDataRoots(
                    f"{source}: image {record.image_id!r} names a file that is not readable here: {_WHERE}."
                ) from None
    return list(records)
