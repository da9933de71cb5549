"""The job store: queue, one job per device, success, external kill, cancel, reopening."""

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

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def manifest(tmp_path_factory):
    folder = tmp_path_factory.mktemp("phantom")
    generate_phantom(32, folder, size=(96, 64), seed=5, malignant_fraction=0.4)
    return str(folder / "manifest.csv")


def _config(manifest, out_dir, **changes):
    return {"manifest": manifest, "model": "gmic", "stage": "image", "input_size": [96, 64], "batch_size": 4,
            "epochs": 1, "max_steps": 2, "device": "cpu", "out_dir": str(out_dir), **changes}


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
        return subprocess.run([sys.executable, "-m", "hct", "jobs", "--store", store, *args], cwd=REPO,
                              capture_output=True, text=True, timeout=300)

    launched = cli("launch", str(config))
    assert launched.returncode == 0 and "job 1 running" in launched.stdout, launched.stderr
    followed = cli("follow", "1", "--poll", "0.2")
    assert followed.returncode == 0 and "job 1 succeeded" in followed.stdout, followed.stdout + followed.stderr
    listed = cli("list")
    assert "succeeded" in listed.stdout
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({"manifest": "/nowhere.csv"}))
    refused = cli("launch", str(bad))
    assert refused.returncode == 2 and "does not exist" in refused.stderr
