"""Image files held in memory under a name that reads like a path (``memory://...``), so that what the
PACS retrieves for the command line goes where a file path goes (records, ``read_mammogram``) without
ever being written to disk. Held for the life of the process."""

from __future__ import annotations

PREFIX = "memory://"
_FILES: dict[str, bytes] = {}


def hold(name: str, data: bytes) -> str:
    """Keep ``data`` in memory; the path-like name to read it by."""
    path = PREFIX + name
    _FILES[path] = bytes(data)
    return path


def is_held(path: object) -> bool:
    """Whether ``path`` names an in-memory file (held or not)."""
    return isinstance(path, str) and path.startswith(PREFIX)


def held(path: str) -> bytes:
    """The bytes held under ``path``; KeyError when this process holds none."""
    return _FILES[path]
