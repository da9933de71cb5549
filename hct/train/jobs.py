"""A job store for training runs that survives restarts: SQLite next to the runs, one job per device.

Jobs are ``python -m hct train`` subprocesses in their own session (so a cancel reaches the whole
process group), logging to a file. Nothing runs in the background: :meth:`JobStore.schedule`, called
by the app on each refresh and by every CLI command, reaps ended processes, marks their state and
starts queued jobs on free devices. A job whose process is gone without reporting success is
marked failed with the tail of its log; the process start time is stored with the pid, so a reused
pid is never mistaken for the job.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from hct.errors import ConfigError
from hct.train.loop import read_metrics

DEFAULT_STORE = Path("runs/jobs.sqlite")
STATES = ("queued", "running", "succeeded", "failed", "cancelled")
PATH_KEYS = ("manifest", "out_dir", "init_checkpoint", "cache_dir")
TAIL_CHARS = 2000
_SCHEMA = f"""CREATE TABLE IF NOT EXISTS jobs (
    id INTEGER PRIMARY KEY AUTOINCREMENT, state TEXT NOT NULL CHECK (state IN {STATES}),
    command TEXT NOT NULL, config TEXT NOT NULL,
    log_file TEXT NOT NULL, metrics_file TEXT NOT NULL, status_file TEXT NOT NULL, checkpoint TEXT,
    created REAL NOT NULL, started REAL, ended REAL, pid INTEGER, start_token TEXT, gpu TEXT, error TEXT)"""
_CHILDREN: dict[int, subprocess.Popen] = {}  # processes this interpreter started, reaped on poll


@dataclass(frozen=True)
class Job:
    """One row of the store."""

    id: int
    state: str
    command: list[str]
    config: dict
    log_file: str
    metrics_file: str
    status_file: str
    checkpoint: str | None
    created: float
    started: float | None
    ended: float | None
    pid: int | None
    start_token: str | None
    gpu: str | None
    error: str | None

    @property
    def finished(self) -> bool:
        return self.state in STATES[2:]  # succeeded, failed, cancelled


def write_status(path: str | Path, state: str, **fields) -> None:
    """What a training process reports at its end (atomically): ``state`` plus e.g. checkpoint, error."""
    path = Path(path)
    partial = path.with_name(f".{path.name}.tmp")
    partial.write_text(json.dumps({"state": state, **fields}))
    os.replace(partial, path)


def _start_token(pid: int) -> str | None:
    """The process's start time (clock ticks since boot) from /proc, or None where /proc is absent."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return stat.rsplit(")", 1)[1].split()[19]


def _alive(pid: int, token: str | None) -> bool:
    """Whether the job's process (not another that reused its pid) still runs."""
    child = _CHILDREN.get(pid)
    if child is not None:
        if child.poll() is None:
            return True
        _CHILDREN.pop(pid, None)
        return False
    if Path("/proc").is_dir():
        try:
            stat = Path(f"/proc/{pid}/stat").read_text()
        except OSError:
            return False
        after = stat.rsplit(")", 1)[1].split()
        return after[0] != "Z" and (token is None or after[19] == token)
    try:
        os.kill(pid, 0)
    except (ProcessLookupError, PermissionError):
        return False
    return True


def _tail(path: str, chars: int = TAIL_CHARS) -> str:
    try:
        with open(path, "rb") as handle:
            handle.seek(0, os.SEEK_END)
            handle.seek(max(0, handle.tell() - chars))
            return handle.read().decode(errors="replace")
    except OSError:
        return ""


def default_devices() -> list[str]:
    """One slot per visible GPU (``cuda:0``...), or a single ``cpu`` slot."""
    import torch

    count = torch.cuda.device_count()
    return [f"cuda:{i}" for i in range(count)] if count else ["cpu"]


class JobStore:
    """Training jobs in the SQLite database ``path``; job files go to ``path``'s folder/jobs/<id>/."""

    def __init__(self, path: str | Path = DEFAULT_STORE, devices: list[str] | None = None) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.devices = devices if devices is not None else default_devices()
        with self._connect() as db:
            db.execute(_SCHEMA)

    @contextlib.contextmanager
    def _connect(self) -> Iterator[sqlite3.Connection]:
        db = sqlite3.connect(self.path, timeout=30, isolation_level=None)
        db.row_factory = sqlite3.Row
        try:
            yield db
        finally:
            db.close()

    @staticmethod
    def _job(row: sqlite3.Row) -> Job:
        data = dict(row)
        data["command"], data["config"] = json.loads(data["command"]), json.loads(data["config"])
        return Job(**data)

    def get(self, job_id: int) -> Job:
        with self._connect() as db:
            row = db.execute("SELECT * FROM jobs WHERE id = ?", (job_id,)).fetchone()
        if row is None:
            raise ConfigError(f"No job {job_id} in {self.path}.")
        return self._job(row)

    def list(self) -> list[Job]:
        """All jobs, newest first."""
        with self._connect() as db:
            return [self._job(row) for row in db.execute("SELECT * FROM jobs ORDER BY id DESC")]

    def submit(self, config: dict) -> Job:
        """Queue a training run of ``config`` (a :class:`~hct.train.TrainConfig` as a dict; paths made absolute)."""
        config = {k: (str(Path(v).resolve()) if k in PATH_KEYS and v else v) for k, v in config.items()}
        with self._connect() as db:
            db.execute("BEGIN IMMEDIATE")  # the row is complete before any scheduler sees it
            job_id = db.execute(
                "INSERT INTO jobs (state, command, config, log_file, metrics_file, status_file, created) "
                "VALUES ('queued', '[]', ?, '', '', '', ?)", (json.dumps(config), time.time()),
            ).lastrowid
            folder = (self.path.parent / "jobs" / str(job_id)).resolve()
            folder.mkdir(parents=True, exist_ok=True)
            config_file = folder / "config.json"
            config_file.write_text(json.dumps(config, indent=2))
            status_file = folder / "status.json"
            command = [sys.executable, "-m", "hct", "train", "--config", str(config_file), "--no-progress",
                       "--status-file", str(status_file)]
            metrics = Path(config.get("out_dir") or "runs/train") / "metrics.jsonl"
            db.execute("UPDATE jobs SET command = ?, log_file = ?, metrics_file = ?, status_file = ? WHERE id = ?",
                       (json.dumps(command), str(folder / "log.txt"), str(metrics), str(status_file), job_id))
            db.execute("COMMIT")
        return self.get(job_id)

    def schedule(self) -> list[Job]:
        """Reap ended jobs, then start queued jobs on free devices; returns all jobs."""
        with self._connect() as db:
            db.execute("BEGIN IMMEDIATE")  # one scheduler at a time, across processes
            try:
                self._schedule(db)
            except BaseException:
                db.execute("ROLLBACK")
                raise
            db.execute("COMMIT")
        return self.list()

    def _schedule(self, db: sqlite3.Connection) -> None:
        for row in db.execute("SELECT * FROM jobs WHERE state = 'running'").fetchall():
            job = self._job(row)
            if not _alive(job.pid, job.start_token):
                self._reap(db, job)
        busy = {row["gpu"] for row in db.execute("SELECT gpu FROM jobs WHERE state = 'running'")}
        gpus = [d for d in self.devices if d != "cpu"]
        for row in db.execute("SELECT * FROM jobs WHERE state = 'queued' ORDER BY id").fetchall():
            job = self._job(row)
            slots = ["cpu"] if job.config.get("device") == "cpu" or not gpus else gpus
            free = [d for d in slots if d not in busy]
            if free:
                self._start(db, job, free[0])
                busy.add(free[0])

    def _start(self, db: sqlite3.Connection, job: Job, device: str) -> None:
        env = dict(os.environ)
        package_root = str(Path(__file__).resolve().parents[2])
        env["PYTHONPATH"] = os.pathsep.join(p for p in (package_root, env.get("PYTHONPATH")) if p)
        if device.startswith("cuda:"):
            env["CUDA_VISIBLE_DEVICES"] = device.split(":", 1)[1]
        with open(job.log_file, "ab") as log:
            process = subprocess.Popen(job.command, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                       env=env, start_new_session=True)
        _CHILDREN[process.pid] = process
        db.execute("UPDATE jobs SET state = 'running', started = ?, pid = ?, start_token = ?, gpu = ? WHERE id = ?",
                   (time.time(), process.pid, _start_token(process.pid), device, job.id))

    def _reap(self, db: sqlite3.Connection, job: Job) -> None:
        try:
            status = json.loads(Path(job.status_file).read_text())
        except (OSError, json.JSONDecodeError):
            status = {}
        if status.get("state") == "succeeded":
            db.execute("UPDATE jobs SET state = 'succeeded', ended = ?, checkpoint = ? WHERE id = ?",
                       (time.time(), status.get("checkpoint"), job.id))
            return
        reason = status.get("error") or "the process ended without reporting success (killed or crashed)"
        db.execute("UPDATE jobs SET state = 'failed', ended = ?, error = ? WHERE id = ?",
                   (time.time(), f"{reason}\n--- log tail ---\n{_tail(job.log_file)}", job.id))

    def cancel(self, job_id: int, grace_s: float = 10.0) -> Job:
        """Cancel a queued job, or stop a running one: SIGTERM its process group, SIGKILL after ``grace_s``."""
        job = self.get(job_id)
        if job.finished:
            return job
        with self._connect() as db:
            db.execute("UPDATE jobs SET state = 'cancelled', ended = ? WHERE id = ?", (time.time(), job_id))
        if job.state == "running" and _alive(job.pid, job.start_token):
            self._signal(job.pid, signal.SIGTERM)
            deadline = time.monotonic() + grace_s
            while _alive(job.pid, job.start_token) and time.monotonic() < deadline:
                time.sleep(0.1)
            if _alive(job.pid, job.start_token):
                self._signal(job.pid, signal.SIGKILL)
        self.schedule()
        return self.get(job_id)

    @staticmethod
    def _signal(pid: int, sig: int) -> None:
        try:
            os.killpg(pid, sig)  # the job leads its own session and process group
        except ProcessLookupError:
            pass

    def follow(self, job_id: int, poll_s: float = 1.0) -> Iterator[str]:
        """The job's log as it grows, until the job ends (scheduling meanwhile)."""
        offset = 0
        while True:
            job = next((j for j in self.schedule() if j.id == job_id), None) or self.get(job_id)
            try:
                with open(job.log_file, "rb") as handle:
                    handle.seek(offset)
                    chunk = handle.read()
                    offset += len(chunk)
            except OSError:
                chunk = b""
            if chunk:
                yield chunk.decode(errors="replace")
            if job.finished:
                return
            time.sleep(poll_s)

    def metrics(self, job_id: int) -> list[dict]:
        """The job's metrics lines so far (for plotting while it runs)."""
        return read_metrics(self.get(job_id).metrics_file)
