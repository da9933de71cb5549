"""A job store for training runs that survives restarts: SQLite next to the runs, one process per device.

Jobs are ``python -m hct train`` subprocesses in their own session (so a cancel reaches the whole
process group), logging to a file; a job of ``nproc`` K > 1 runs under ``torchrun --nproc-per-node K``
and takes K devices (K GPUs, or K CPU slots), each rank beating its heartbeat and logging apart
(:meth:`JobStore.ranks`). Queued jobs start first come first served per kind of device. Nothing runs
in the background: :meth:`JobStore.schedule`, called by the app on each refresh and by every CLI
command, reaps ended processes, marks their state and starts queued jobs on free devices. A job whose
process is gone without reporting success is marked failed with the tail of its log; the process
start time is stored with the pid, so a reused pid is never mistaken for the job.

A job records its ``owner`` (the app's session or signed-in user); :meth:`JobStore.cancel` given an
owner refuses another owner's job. The command line cancels any job: its user is an operator.

``HCT_JOB_CPU_SLOTS``: training processes run at once without a GPU (default 1).
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
from hct.io import atomic_write
from hct.train.heartbeat import process_start, read_heartbeats

DEFAULT_STORE = Path("runs/jobs.sqlite")
CPU_SLOTS_ENV = "HCT_JOB_CPU_SLOTS"
STATES = ("queued", "running", "succeeded", "failed", "cancelled")
PATH_KEYS = ("manifest", "out_dir", "init_checkpoint", "cache_dir")
TAIL_CHARS = 2000
_SCHEMA = f"""CREATE TABLE IF NOT EXISTS jobs (
    id INTEGER PRIMARY KEY AUTOINCREMENT, state TEXT NOT NULL CHECK (state IN {STATES}),
    command TEXT NOT NULL, config TEXT NOT NULL,
    log_file TEXT NOT NULL, metrics_file TEXT NOT NULL, status_file TEXT NOT NULL, checkpoint TEXT,
    created REAL NOT NULL, started REAL, ended REAL, pid INTEGER, start_token TEXT, gpu TEXT, error TEXT,
    nproc INTEGER NOT NULL DEFAULT 1, owner TEXT)"""
_ADDED_COLUMNS = {"nproc": "INTEGER NOT NULL DEFAULT 1", "owner": "TEXT"}  # to stores made before them
_CHILDREN: dict[int, subprocess.Popen] = {}  # processes this interpreter started, reaped on poll


class NotYourJob(ConfigError):
    """A session asked to cancel a job that another session (or user) launched."""


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
    gpu: str | None  # the devices it runs on, comma-separated (e.g. "cuda:0,cuda:1" or "cpu:0")
    error: str | None
    nproc: int = 1
    owner: str | None = None

    @property
    def finished(self) -> bool:
        return self.state in STATES[2:]  # succeeded, failed, cancelled

    @property
    def folder(self) -> Path:
        """The job's own folder: config, log, status and each rank's heartbeat and logs."""
        return Path(self.status_file).parent


def write_status(path: str | Path, state: str, **fields) -> None:
    """What a training process reports at its end (atomically): ``state`` plus e.g. checkpoint, error."""
    atomic_write(path, json.dumps({"state": state, **fields}))


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


def cpu_slots() -> int:
    """Training processes run at once without a GPU: ``HCT_JOB_CPU_SLOTS``, default 1."""
    text = os.environ.get(CPU_SLOTS_ENV, "").strip() or "1"
    if not text.isdigit() or int(text) < 1:
        raise ConfigError(f"{CPU_SLOTS_ENV} must be a positive integer, got {text!r}")
    return int(text)


def default_devices() -> list[str]:
    """One slot per visible GPU (``cuda:0``...), or :func:`cpu_slots` slots ``cpu:0``..."""
    import torch

    count = torch.cuda.device_count()
    return [f"cuda:{i}" for i in range(count)] if count else [f"cpu:{i}" for i in range(cpu_slots())]


def _train_command(config_file: Path, status_file: Path, nproc: int) -> list[str]:
    """``python -m hct train``, under ``torchrun --nproc-per-node K`` (each rank logging to the job's
    ``ranks/`` folder as well as to its log) when ``nproc`` K > 1."""
    train = ["-m", "hct", "train", "--config", str(config_file), "--no-progress", "--status-file", str(status_file)]
    if nproc == 1:
        return [sys.executable, *train]
    return [
        sys.executable,
        "-m",
        "torch.distributed.run",
        "--standalone",
        "--nproc-per-node",
        str(nproc),
        "--log-dir",
        str(status_file.parent / "ranks"),
        "--redirects",
        "3",
        "--tee",
        "3",
        *train,
    ]


class JobStore:
    """Training jobs in the SQLite database ``path``; job files go to ``path``'s folder/jobs/<id>/."""

    def __init__(self, path: str | Path = DEFAULT_STORE, devices: list[str] | None = None) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.devices = devices if devices is not None else default_devices()
        with self._connect() as db:
            db.execute(_SCHEMA)
            present = {row["name"] for row in db.execute("PRAGMA table_info(jobs)")}
            for name, kind in _ADDED_COLUMNS.items():
                if name not in present:
                    db.execute(f"ALTER TABLE jobs ADD COLUMN {name} {kind}")

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

    def slots(self, config: dict) -> list[str]:
        """The devices a job of ``config`` may run on: the CPU slots when it asks for the CPU or there
        is no GPU, else the GPUs."""
        gpus = [d for d in self.devices if not d.startswith("cpu")]
        return [d for d in self.devices if d.startswith("cpu")] if config.get("device") == "cpu" or not gpus else gpus

    def submit(self, config: dict, nproc: int = 1, owner: str | None = None) -> Job:
        """Queue a training run of ``config`` (a :class:`~hct.train.TrainConfig` as a dict; paths made
        absolute) in ``nproc`` processes (``torchrun`` when more than one), launched by ``owner``."""
        from hct.train.config import TrainConfig

        config = TrainConfig.from_dict(config).to_dict()  # the one check `train` makes too, before anything is queued
        slots = self.slots(config)
        if not 1 <= nproc <= len(slots):
            where = (
                f"{len(slots)} GPUs" if not slots[0].startswith("cpu") else f"{len(slots)} CPU slots ({CPU_SLOTS_ENV})"
            )
            raise ConfigError(f"A job of {nproc} processes needs {nproc} devices; this server has {where}.")
        config = {k: (str(Path(v).resolve()) if k in PATH_KEYS and v else v) for k, v in config.items()}
        with self._connect() as db:
            db.execute("BEGIN IMMEDIATE")  # the row is complete before any scheduler sees it
            job_id = db.execute(
                "INSERT INTO jobs (state, command, config, log_file, metrics_file, status_file, created, nproc, owner) "
                "VALUES ('queued', '[]', ?, '', '', '', ?, ?, ?)",
                (json.dumps(config), time.time(), nproc, owner),
            ).lastrowid
            folder = (self.path.parent / "jobs" / str(job_id)).resolve()
            folder.mkdir(parents=True, exist_ok=True)
            config_file = folder / "config.json"
            atomic_write(config_file, json.dumps(config, indent=2))
            status_file = folder / "status.json"
            command = _train_command(config_file, status_file, nproc)
            metrics = Path(config.get("out_dir") or "runs/train") / "metrics.jsonl"
            db.execute(
                "UPDATE jobs SET command = ?, log_file = ?, metrics_file = ?, status_file = ? WHERE id = ?",
                (json.dumps(command), str(folder / "log.txt"), str(metrics), str(status_file), job_id),
            )
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
        busy = {
            d
            for row in db.execute("SELECT gpu FROM jobs WHERE state = 'running'")
            for d in (row["gpu"] or "").split(",")
        }
        blocked: set[str] = set()  # kinds whose first queued job waits: no later job passes it
        for row in db.execute("SELECT * FROM jobs WHERE state = 'queued' ORDER BY id").fetchall():
            job = self._job(row)
            slots = self.slots(job.config)
            free = [d for d in slots if d not in busy]
            if slots[0] in blocked:
                continue
            if len(free) < job.nproc:
                blocked.add(slots[0])
                continue
            self._start(db, job, free[: job.nproc])
            busy.update(free[: job.nproc])

    def _start(self, db: sqlite3.Connection, job: Job, devices: list[str]) -> None:
        env = dict(os.environ)
        package_root = str(Path(__file__).resolve().parents[2])
        env["PYTHONPATH"] = os.pathsep.join(p for p in (package_root, env.get("PYTHONPATH")) if p)
        if devices[0].startswith("cuda:"):
            env["CUDA_VISIBLE_DEVICES"] = ",".join(d.split(":", 1)[1] for d in devices)
        with open(job.log_file, "ab") as log:
            process = subprocess.Popen(
                job.command,
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                env=env,
                start_new_session=True,
            )
        _CHILDREN[process.pid] = process
        db.execute(
            "UPDATE jobs SET state = 'running', started = ?, pid = ?, start_token = ?, gpu = ? WHERE id = ?",
            (time.time(), process.pid, process_start(process.pid), ",".join(devices), job.id),
        )

    def _reap(self, db: sqlite3.Connection, job: Job) -> None:
        try:
            status = json.loads(Path(job.status_file).read_text())
        except (OSError, json.JSONDecodeError):
            status = {}
        if status.get("state") == "succeeded":
            db.execute(
                "UPDATE jobs SET state = 'succeeded', ended = ?, checkpoint = ? WHERE id = ?",
                (time.time(), status.get("checkpoint"), job.id),
            )
            return
        reason = status.get("error") or "the process ended without reporting success (killed or crashed)"
        db.execute(
            "UPDATE jobs SET state = 'failed', ended = ?, error = ? WHERE id = ?",
            (time.time(), f"{reason}\n--- log tail ---\n{_tail(job.log_file)}", job.id),
        )

    def cancel(self, job_id: int, grace_s: float = 10.0, owner: str | None = None) -> Job:
        """Cancel a queued job, or stop a running one: SIGTERM its process group, SIGKILL after
        ``grace_s``, and any rank still alive with it. Given ``owner`` (the app's session or user),
        another owner's job is refused with :class:`NotYourJob`; without one (the command line), any."""
        job = self.get(job_id)
        if owner is not None and job.owner != owner:
            raise NotYourJob(
                f"Job {job_id} was launched from another session; only that session, or an operator "
                f"on the server (python -m hct jobs cancel {job_id}), can cancel it."
            )
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
        for beat in read_heartbeats(job.folder, job.nproc) if job.nproc > 1 else ():
            if "pid" in beat and _alive(beat["pid"], beat.get("start_token")):  # torchrun's ranks lead their own groups
                self._signal(beat["pid"], signal.SIGKILL)
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
        from hct.train.loop import read_metrics  # torch: only when metrics are asked for

        return read_metrics(self.get(job_id).metrics_file)

    def ranks(self, job_id: int) -> list[dict]:
        """Each rank's last heartbeat (:mod:`hct.train.heartbeat`: phase, epoch, step, pid, time) with
        ``logs``, the paths of its own output (``torchrun``'s per-rank stdout and stderr of the latest
        attempt; the job's log for one process)."""
        job = self.get(job_id)
        beats = read_heartbeats(job.folder, job.nproc)
        for beat in beats:
            attempts = sorted(
                (job.folder / "ranks").glob(f"*/attempt_*/{beat['rank']}"), key=lambda p: p.stat().st_mtime
            )
            beat["logs"] = (
                [str(attempts[-1] / "stdout.log"), str(attempts[-1] / "stderr.log")]
                if attempts
                else [job.log_file]
                if job.nproc == 1
                else []
            )
        return beats
