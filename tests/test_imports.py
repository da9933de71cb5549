"""Importing the library has no side effects on the user's environment."""

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

IMPORT_ALL = """
import importlib, pkgutil, matplotlib
import hct
names = [m.name for m in pkgutil.walk_packages(hct.__path__, "hct.")]
for name in names:
    importlib.import_module(name)
print(len(names), matplotlib.get_backend())
"""


def test_importing_every_module_leaves_the_matplotlib_backend_alone():
    env = {"MPLBACKEND": "svg", "PATH": "/usr/bin:/bin", "PYTHONPATH": str(ROOT)}
    done = subprocess.run([sys.executable, "-c", IMPORT_ALL], cwd=ROOT, env=env, capture_output=True, text=True,
                          timeout=300)
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
    env = {"PATH": "/usr/bin:/bin", "PYTHONPATH": str(ROOT)}
    done = subprocess.run([sys.executable, "-c", BUILD_PARSER.format(heavy=HEAVY)], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["none"], f"building the parser imported {done.stdout.strip()}"


def test_the_packages_public_names_resolve_to_their_objects():
    """Lazy package exports give the functions even where a module has the same name (``hct.data.preprocess``)."""
    import importlib
    import inspect

    import hct.data.preprocess  # noqa: F401  (the submodule imported first must not hide the function)
    import hct.explain.readable  # noqa: F401
    for package in ("hct.data", "hct.explain", "hct.models", "hct.eval", "hct.train", "hct.pacs"):
        module = importlib.import_module(package)
        for name in module.__all__:
            value = getattr(module, name)
            assert not inspect.ismodule(value), f"{package}.{name} is a module"
    from hct.data import preprocess
    from hct.explain import readable
    assert callable(preprocess) and callable(readable)
