"""Files written whole or not at all, and their digests: the one place that renames a file into place.

:func:`atomic_write` writes through a temporary file made by ``mkstemp`` in the target's folder (a
unique name, so threads of one process, such as the app's sessions, and separate processes never
share one), then renames it over the target: a reader sees the old file or the new one, never half
of either. Concurrent writers of one target each write their own temporary; the last rename wins.
"""

from __future__ import annotations

import hashlib
import os
import tempfile
from collections.abc import Callable
from pathlib import Path

FILE_MODE = 0o644  # mkstemp's files are private (0600); what is written here is meant to be read


def atomic_write(path: str | os.PathLike, content: str | bytes | Callable[[Path], object]) -> Path:
    """Write ``content`` to ``path`` atomically, creating its folder; returns ``path``.

    ``content`` is text (UTF-8), bytes, or a function that writes the temporary file it is given
    (``lambda tmp: torch.save(state, tmp)``). The temporary keeps the target's suffix, so writers that
    add one (``numpy.savez``: ``.npz``) write where they are told. On any error it is removed and the
    target is left as it was."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, name = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=f".tmp{path.suffix}")
    os.close(fd)
    tmp = Path(name)
    try:
        if isinstance(content, str):
            tmp.write_text(content, encoding="utf-8")
        elif isinstance(content, bytes):
            tmp.write_bytes(content)
        else:
            content(tmp)
        os.chmod(tmp, FILE_MODE)
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
    return path


def file_sha256(path: str | os.PathLike) -> str:
    """The sha256 of a file's bytes (hex), read in 1 MiB chunks."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()
