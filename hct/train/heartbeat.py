"""Each training process's heartbeat: ``rank<R>.json`` in its job's folder, rewritten (atomically) at
every change of phase and at most every ``interval_s`` seconds within one, so the job store can show
per-rank status of a ``torchrun`` job: phase, epoch, step, pid and the time of the last beat."""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

from hct.io import atomic_write

PHASES = ("starting", "loading data", "training", "validating", "done", "failed")


def heartbeat_path(folder: str | Path, rank: int) -> Path:
    return Path(folder) / f"rank{rank}.json"


def process_start(pid: int) -> str | None:
    """A process's start time (clock ticks since boot) from /proc, or None where /proc is absent:
    with the pid, it tells a process from a later one that reused its pid."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return stat.rsplit(")", 1)[1].split()[19]


class Heartbeat:
    """Call ``beat(phase, **fields)`` as training goes; ``fields`` are plain values (epoch, step...)."""

    def __init__(self, folder: str | Path, rank: int = 0, interval_s: float = 2.0) -> None:
        self.path, self.rank, self.interval_s = heartbeat_path(folder, rank), rank, interval_s
        self._phase, self._last = "", 0.0
        self._identity = {"rank": rank, "pid": os.getpid(), "start_token": process_start(os.getpid())}

    def __call__(self, phase: str, **fields) -> None:
        now = time.time()
        if phase == self._phase and now - self._last < self.interval_s:
            return
        self._phase, self._last = phase, now
        atomic_write(self.path, json.dumps({**self._identity, "phase": phase, "time": now, **fields}))


def read_heartbeats(folder: str | Path, ranks: int) -> list[dict]:
    """The last beat of ranks 0..``ranks``-1 (``{"rank": r, "phase": "not started"}`` for a rank
    that has not beaten yet)."""
    beats = []
    for rank in range(ranks):
        try:
            beats.append(json.loads(heartbeat_path(folder, rank).read_text()))
        except (OSError, json.JSONDecodeError):
            beats.append({"rank": rank, "phase": "not started"})
    return beats
