"""Importing the library has no side effects on the user's environment."""

import subprocess
import sys

import pytest

from tests.paths import REPO

IMPORT_ALL = """
import importlib, pkgutil, matplotlib
import hct
names = [m.name for m in pkgutil.walk_packages(hct.__path__, "hct.")]
for name in names:
    importlib.import_module(name)
print(len(names), matplotlib.get_backend())
"""


def test_importing_every_module_leaves_the_matplotlib_backend_alone():
    env = {"MPLBACKEND": "svg", "PATH": "/usr/bin:/bin", "PYTHONPATH": str(REPO)}
    done = subprocess.run(
        [sys.executable, "-c", IMPORT_ALL], cwd=REPO, env=env, capture_output=True, text=True, timeout=300
    )
    assert done.returncode == 0, done.stderr
    count, backend = done.stdout.split()
    assert int(count) > 40 and backend == "svg"


HEAVY = ("torch", "torchvision", "pandas", "scipy", "sklearn", "matplotlib", "plotly", "captum", "pydicom")
BUILD_PARSER = """
import sys
import hct, hct.data, hct.explain, hct.models, hct.eval, hct.train
from hct.__main__ import build_parser
build_parser()
print(" ".join(sorted(name for name in {heavy!r} if name in sys.modules)) or "none")
"""


def test_importing_hct_and_building_the_command_line_load_no_heavy_library():
    """``python -m hct --help`` starts at once: each command imports its library only when it runs."""
    env = {"PATH": "/usr/bin:/bin", "PYTHONPATH": str(REPO)}
    done = subprocess.run(
        [sys.executable, "-c", BUILD_PARSER.format(heavy=HEAVY)],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["none"], f"building the parser imported {done.stdout.strip()}"


def test_the_packages_public_names_resolve_to_their_objects():
    """Every name a package exports lazily is its module's object (a function, class or constant), never a module."""
    import importlib
    import inspect

    for package in ("hct.data", "hct.explain", "hct.models", "hct.eval", "hct.train", "hct.data.pacs"):
        module = importlib.import_module(package)
        for name in module.__all__:
            value = getattr(module, name)
            assert not inspect.ismodule(value), f"{package}.{name} is a module"


def test_a_public_name_that_is_also_a_module_name_is_refused():
    """``hct.data.sets`` exporting ``roots`` would be hidden by the module ``hct.data.sets.roots`` once imported."""
    from hct.lazy import lazy_exports

    with pytest.raises(ValueError, match=r"\['roots'\] are also its modules' names"):
        lazy_exports("hct.data.sets", {"hct.data.sets.roots": ("roots",)})
