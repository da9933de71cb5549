"""Running ``python -m hct`` in one process and under ``torchrun`` with two CPU processes, for the tests
that compare the two.

Both use one thread per process and ``MKL_CBWR=AUTO,STRICT``: without it, MKL's matrix products
(HCT's attention) round differently depending on the memory alignment of their operands, and the same
image's result then differs in its last bits from one process layout to another.
"""

import os
import socket
import subprocess
import sys

from tests.paths import REPO

ENV = {**os.environ, "OMP_NUM_THREADS": "1", "MKL_CBWR": "AUTO,STRICT", "PYTHONPATH": str(REPO)}


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def hct(*args: str, env: dict | None = None, timeout: int = 600) -> subprocess.CompletedProcess:
    """``python -m hct ARGS`` in one process."""
    return subprocess.run(
        [sys.executable, "-m", "hct", *args], cwd=REPO, env=env or ENV, capture_output=True, text=True, timeout=timeout
    )


def hct_torchrun(
    *args: str, nproc: int = 2, env: dict | None = None, timeout: int = 600
) -> subprocess.CompletedProcess:
    """``torchrun --nproc_per_node NPROC -m hct -- ARGS`` ("--": torchrun would take options such as --n)."""
    return subprocess.run(
        [
            sys.executable,
            "-m",
            "torch.distributed.run",
            "--nnodes",
            "1",
            "--nproc_per_node",
            str(nproc),
            "--master_addr",
            "127.0.0.1",
            "--master_port",
            str(free_port()),
            "-m",
            "hct",
            "--",
            *args,
        ],
        cwd=REPO,
        env=env or ENV,
        capture_output=True,
        text=True,
        timeout=timeout,
    )
