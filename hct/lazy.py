"""Packages whose public names are imported from their modules on first use, so that ``import hct.data``
(and the command line, which imports only what a command runs) does not load torch.

A package's ``__init__`` lists its names by module and calls :func:`lazy_exports`::

    lazy_exports(__name__, {"hct.data.image.reading": ("Mammogram", "read_mammogram"), ...})

``from hct.data import read_mammogram`` then imports ``hct.data.image.reading`` only. A public name is
never also the name of one of the package's modules (the import system would set the module over it).
"""

from __future__ import annotations

import importlib
import importlib.util
import sys
import types
from collections.abc import Mapping, Sequence


class _LazyPackage(types.ModuleType):
    """A package module that resolves its exports on first access."""

    _exports: dict[str, str]  # public name -> the module that defines it

    def __getattr__(self, name: str):
        module = self.__dict__.get("_exports", {}).get(name)
        if module is None:
            raise AttributeError(f"module {self.__name__!r} has no attribute {name!r}")
        value = getattr(importlib.import_module(module), name)
        self.__dict__[name] = value
        return value

    def __dir__(self) -> list[str]:
        return sorted(set(super().__dir__()) | set(self._exports))


def lazy_exports(package: str, exports: Mapping[str, Sequence[str]]) -> None:
    """Make ``package`` (its ``__name__``) export ``exports`` (module -> public names) lazily; sets ``__all__``."""
    owners = {name: module for module, names in exports.items() for name in names}
    if len(owners) != sum(len(names) for names in exports.values()):
        raise ValueError(f"{package}: a public name is listed under two modules")
    if clash := sorted(name for name in owners if importlib.util.find_spec(f"{package}.{name}") is not None):
        raise ValueError(f"{package}: public names {clash} are also its modules' names")
    target = sys.modules[package]
    target.__class__ = _LazyPackage
    target.__dict__["_exports"] = owners
    target.__dict__["__all__"] = sorted(owners)
