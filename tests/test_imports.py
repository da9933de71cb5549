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
