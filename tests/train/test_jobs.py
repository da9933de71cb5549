"""The job store: queue, one process per device, success, external kill, cancel, reopening, owners,
torchrun jobs of K processes on K devices with per-rank status."""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from hct.data import generate_phantom
from hct.train import JobStore
from hct.train.jobs import NotYourJob
from tests.paths import REPO


@pytest.fixture(scope="module")
def manifest(tmp_path_factory):
    folder = tmp_path_factory.mktemp("phantom")
    generate_phantom(32, folder, size=(96, 64), seed=5, malignant_fraction=0.4)
    return str(folder / "manifest.csv")


def _config(manifest, out_dir, **changes):
    return {
        "manifest": manifest,
        "model": "gmic",
        "stage": "image",
        "input_size": [96, 64],
        "batch_size": 4,
        "epochs": 1,
        "max_steps": 2,
        "device": "cpu",
        "out_dir": str(out_dir),
        **changes,
    }


def _wait(store, job_id, states, timeout=240):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        store.schedule()
        job = store.get(job_id)
        if job.state in states:
            return job
        time.sleep(0.2)
    raise AssertionError(f"job {job_id} stayed {store.get(job_id).state}; log:\n{Path(job.log_file).read_text()}")


def _wait_for_metrics(job, timeout=240):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and not Path(job.metrics_file).exists():
        time.sleep(0.2)


def test_queue_success_kill_cancel_and_reopen(manifest, tmp_path):
    store = JobStore(tmp_path / "runs" / "jobs.sqlite", devices=["cpu"])
    quick = store.submit(_config(manifest, tmp_path / "quick"))
    slow = store.submit(_config(manifest, tmp_path / "slow", epochs=500, max_steps=None))
    assert (quick.state, slow.state) == ("queued", "queued")
    store.schedule()
    assert (store.get(quick.id).state, store.get(slow.id).state) == ("running", "queued")  # one per device

    done = _wait(store, quick.id, {"succeeded", "failed"})
    assert done.state == "succeeded", done.error
    assert Path(done.checkpoint).is_file() and done.checkpoint.endswith("best.safetensors")
    assert store.metrics(quick.id) and store.get(slow.id).state == "running"

    running = store.get(slow.id)
    _wait_for_metrics(running)
    os.killpg(running.pid, signal.SIGKILL)  # killed from outside the store
    dead = _wait(store, slow.id, {"failed"}, timeout=60)
    assert "without reporting success" in dead.error and "--- log tail ---" in dead.error and dead.ended

    victim = store.submit(_config(manifest, tmp_path / "victim", epochs=500, max_steps=None))
    store.schedule()
    started = store.get(victim.id)
    assert started.state == "running"
    cancelled = store.cancel(victim.id, grace_s=5)
    assert cancelled.state == "cancelled"
    with pytest.raises(ProcessLookupError):
        os.killpg(started.pid, 0)

    reopened = JobStore(tmp_path / "runs" / "jobs.sqlite", devices=["cpu"])
    assert [(j.id, j.state) for j in reopened.list()] == [(3, "cancelled"), (2, "failed"), (1, "succeeded")]


def test_jobs_cli_launch_follow_list(manifest, tmp_path):
    config = tmp_path / "job.json"
    config.write_text(json.dumps(_config(manifest, tmp_path / "cli")))
    store = str(tmp_path / "jobs.sqlite")

    def cli(*args):
        return subprocess.run(
            [sys.executable, "-m", "hct", "jobs", "--store", store, *args],
            cwd=REPO,
            capture_output=True,
            text=True,
            timeout=300,
        )

    launched = cli("launch", "--config", str(config))
    assert launched.returncode == 0 and "job 1 running" in launched.stdout, launched.stderr
    followed = cli("follow", "1", "--poll", "0.2")
    assert followed.returncode == 0 and "job 1 succeeded" in followed.stdout, followed.stdout + followed.stderr
    listed = cli("list")
    assert "succeeded" in listed.stdout
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({"manifest": "/nowhere.csv"}))
    refused = cli("launch", "--config", str(bad))
    assert refused.returncode == 2 and "does not exist" in refused.stderr


def test_only_the_owner_cancels_from_the_app_an_operator_cancels_any(manifest, tmp_path):
    store = JobStore(tmp_path / "jobs.sqlite", devices=["cpu:0"])
    blocker = store.submit(_config(manifest, tmp_path / "a", epochs=500, max_steps=None), owner="session-a")
    store.schedule()  # the blocker takes the one device: the next job stays queued
    mine = store.submit(_config(manifest, tmp_path / "b"), owner="session-a")
    with pytest.raises(NotYourJob, match="another session"):
        store.cancel(mine.id, owner="session-b")
    assert store.get(mine.id).state == "queued"
    assert store.cancel(mine.id, owner="session-a").state == "cancelled"
    assert store.cancel(blocker.id).state == "cancelled"  # no owner: the command line's operator


def test_a_job_of_k_processes_takes_k_devices_first_come_first_served(manifest, tmp_path):
    store = JobStore(tmp_path / "jobs.sqlite", devices=["cpu:0", "cpu:1"])
    with pytest.raises(Exception, match="needs 3 devices; this server has 2 CPU slots"):
        store.submit(_config(manifest, tmp_path / "x"), nproc=3)
    one = store.submit(_config(manifest, tmp_path / "one", epochs=500, max_steps=None))
    two = store.submit(_config(manifest, tmp_path / "two"), nproc=2)
    late = store.submit(_config(manifest, tmp_path / "late"))
    store.schedule()
    # one holds a slot; the two-process job waits for both, and the later job does not pass it
    assert [store.get(j.id).state for j in (one, two, late)] == ["running", "queued", "queued"]
    store.cancel(one.id, grace_s=5)
    assert store.get(two.id).state == "running" and store.get(two.id).gpu == "cpu:0,cpu:1"
    assert store.get(late.id).state == "queued"
    for job in (two, late):
        store.cancel(job.id, grace_s=5)


@pytest.mark.slow
def test_a_torchrun_job_trains_and_shows_each_rank(manifest, tmp_path):
    store = JobStore(tmp_path / "jobs.sqlite", devices=["cpu:0", "cpu:1"])
    job = store.submit(_config(manifest, tmp_path / "ddp", batch_size=4, micro_batch=2), nproc=2)
    assert "torch.distributed.run" in job.command and "--nproc-per-node" in job.command
    done = _wait(store, job.id, {"succeeded", "failed"}, timeout=400)
    assert done.state == "succeeded", done.error
    ranks = store.ranks(job.id)
    assert [r["rank"] for r in ranks] == [0, 1] and {r["phase"] for r in ranks} == {"done"}
    assert all(r["step"] == 2 and r["pid"] for r in ranks)
    for rank in ranks:
        assert Path(rank["logs"][0]).is_file() and Path(rank["logs"][1]).is_file()
    assert store.metrics(job.id)


def test_a_store_made_before_owners_and_nproc_opens(tmp_path):
    import sqlite3

    path = tmp_path / "old.sqlite"
    with sqlite3.connect(path) as db:
        db.execute("""CREATE TABLE jobs (id INTEGER PRIMARY KEY AUTOINCREMENT, state TEXT NOT NULL, command TEXT NOT NULL,
            config TEXT NOT NULL, log_file TEXT NOT NULL, metrics_file TEXT NOT NULL, status_file TEXT NOT NULL,
            checkpoint TEXT, created REAL NOT NULL, started REAL, ended REAL, pid INTEGER, start_token TEXT, gpu TEXT,
            error TEXT)""")
        db.execute(
            "INSERT INTO jobs (state, command, config, log_file, metrics_file, status_file, created) "
            "VALUES ('succeeded', '[]', '{}', '', '', '', 0)"
        )
    job = JobStore(path, devices=["cpu:0"]).list()[0]
    assert (job.nproc, job.owner, job.state) == (1, None, "succeeded")
