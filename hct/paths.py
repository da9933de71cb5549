"""The one check of a path given by a user before it is opened: its name's length, its kind (file or
folder) and whether this process may read it, each refused with a :class:`~hct.errors.PathError` that
says which (never an OSError such as "File name too long")."""

from __future__ import annotations

import errno
import os
from pathlib import Path

from hct.errors import PathError

NAME_MAX = 255  # bytes in one file or folder name (Linux, macOS, Windows)
PATH_MAX = 4096


def _shown(path: str) -> str:
    return path if len(path) <= 80 else f"{path[:40]}...{path[-30:]} ({len(path)} characters)"


def describe_os_error(err: OSError) -> str:
    """One line for an OSError the library did not foresee: which file, what went wrong, what to do."""
    where = f"{_shown(os.fsdecode(err.filename))}: " if err.filename else ""
    return f"{where}{err.strerror or err}; check the path, its permissions and the free space."


def check_name(path: str | os.PathLike, what: str = "path") -> Path:
    """``path`` when no part of its name is too long and it holds no NUL byte; else :class:`PathError`."""
    text = os.fspath(path)
    if "\x00" in text:
        raise PathError(f"the {what} {_shown(text)!r} holds a NUL character; type the path again.")
    long = next((part for part in Path(text).parts if len(part.encode("utf-8", "surrogateescape")) > NAME_MAX), None)
    if long is not None:
        raise PathError(
            f"the {what} {_shown(text)!r} has a name of {len(long.encode('utf-8', 'surrogateescape'))} "
            f"bytes ({long[:24]}...), beyond the {NAME_MAX} a file name may have; shorten it."
        )
    if len(text.encode("utf-8", "surrogateescape")) > PATH_MAX:
        raise PathError(
            f"the {what} is {len(text)} characters long, beyond the {PATH_MAX} a path may have; shorten it."
        )
    return Path(text)


def existing(path: str | os.PathLike, kind: str = "file", what: str = "path", hint: str = "") -> Path:
    """``path`` when it is an existing ``kind`` ('file', 'folder' or 'any') this process may read; else
    :class:`PathError` saying whether it is missing, of the other kind, or not readable (``hint`` appended)."""
    path = check_name(path, what)
    hint = (f"; {hint.rstrip('.')}" if hint else "") + "."
    try:
        is_dir = path.is_dir()
        exists = is_dir or path.exists()
    except OSError as err:  # e.g. ELOOP, EACCES on a parent
        raise PathError(
            f"the {what} {_shown(str(path))} cannot be opened ({os.strerror(err.errno or errno.EIO)}){hint}"
        ) from None
    if not exists:
        raise PathError(f"the {what} {_shown(str(path))} does not exist{hint}")
    if kind == "file" and is_dir:
        raise PathError(f"the {what} {_shown(str(path))} is a folder, not a file{hint}")
    if kind == "folder" and not is_dir:
        raise PathError(f"the {what} {_shown(str(path))} is a file, not a folder{hint}")
    if not os.access(path, os.R_OK | (os.X_OK if is_dir else 0)):
        raise PathError(f"the {what} {_shown(str(path))} may not be read by this process (permission denied){hint}")
    return path
