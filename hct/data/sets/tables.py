"""Reading a data set's CSV table (a manifest, CBIS-DDSM's case descriptions, VinDr-Mammo's
annotations) with one set of checks: the file exists, is CSV text, and has the columns it needs."""

from __future__ import annotations

import csv
from collections.abc import Iterable
from pathlib import Path

from hct.errors import ConfigError
from hct.paths import existing


def read_table(path: str | Path, required: Iterable[str], what: str, hint: str) -> list[dict[str, str]]:
    """The rows of the CSV file ``path`` (column names stripped; a spreadsheet's byte-order mark
    dropped), as text. A missing file, one that is not CSV text, or one without the ``required``
    columns raises :class:`ConfigError` naming ``what`` the file should be, and ``hint``."""
    path = existing(path, "file", what, hint)
    try:
        with open(path, newline="", encoding="utf-8-sig") as handle:
            reader = csv.DictReader(handle)
            names = [name.strip() for name in reader.fieldnames or ()]
            missing = sorted(set(required) - set(names))
            if missing:
                raise ConfigError(f"{what} {path} lacks the column(s) {missing}; {hint}")
            return [{name: value or "" for name, value in zip(names, row.values())} for row in reader]
    except (UnicodeDecodeError, csv.Error) as err:
        raise ConfigError(f"{what} {path} is not a CSV text file ({err}); {hint}") from None
