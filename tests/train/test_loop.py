"""The training loop end to end on a tiny phantom: CLI stages, kill-and-resume, torchrun."""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from hct.data import generate_phantom
from hct.models.checkpoints import load_model
from hct.train import train
from tests.paths import REPO
from tests.torchrun import hct_torchrun

SIZE = [128, 96]
MODEL = "gmic"


@pytest.fixture(scope="module")
def manifest(tmp_path_factory):
    folder = tmp_path_factory.mktemp("phantom")
    generate_phantom(48, folder, size=tuple(SIZE), seed=3, malignant_fraction=0.4)
    return str(folder / "manifest.csv")


def _config(manifest, out_dir, **changes):
    base = dict(
        manifest=manifest,
        model="gmic",
        stage="image",
        input_size=SIZE,
        batch_size=4,
        lr=1e-3,
        epochs=2,
        out_dir=str(out_dir),
        log_every=1,
    )
    return {**base, **changes}


def _write(path, config):
    path.write_text(json.dumps(config))
    return str(path)


def _cli(*args, timeout=300):
    return subprocess.run(
        [sys.executable, "-m", "hct", *args], cwd=REPO, capture_output=True, text=True, timeout=timeout
    )


def test_patch_then_image_stage_through_the_cli(manifest, tmp_path):
    patch = _config(manifest, tmp_path / "patch", stage="patch", patch_size=32, batch_size=8, max_steps=3)
    run = _cli("train", "--config", _write(tmp_path / "patch.json", patch))
    assert run.returncode == 0, run.stderr
    image = _config(
        manifest,
        tmp_path / "image",
        max_steps=3,
        micro_batch=2,
        optimizer="asam",
        init_checkpoint=str(tmp_path / "patch" / "best.safetensors"),
    )
    run = _cli("train", "--config", _write(tmp_path / "image.json", image))
    assert run.returncode == 0, run.stderr
    result = json.loads(run.stdout)
    assert result["steps"] == 3
    model, card = load_model(result["best_checkpoint"])
    assert card.stage == "image" and card.input_size == tuple(SIZE) and card.architecture == "gmic"
    assert card.training["config"]["optimizer"] == "asam" and card.code_version
    assert model(torch.zeros(1, 1, *SIZE)).shape == (1, 2)
    lines = [json.loads(line) for line in Path(result["metrics_path"]).read_text().splitlines()]
    steps = [line for line in lines if "loss" in line]
    assert [line["step"] for line in steps] == [1, 2, 3]
    assert {"step", "epoch", "loss", "lr", "time"} <= set(steps[0])
    assert any("val_auc" in line and "val_loss" in line for line in lines)


def _weights(folder):
    return load_file(str(Path(folder) / "last.safetensors"))


def test_kill_and_resume_equals_an_unbroken_run(manifest, tmp_path):
    settings = dict(epochs=4, checkpoint_every=3, overrides={"drop_rate": 0.3}, noise_std=0.1)
    straight = train(_config(manifest, tmp_path / "straight", **settings), progress=False)

    config_path = _write(tmp_path / "broken.json", _config(manifest, tmp_path / "broken", **settings))
    process = subprocess.Popen(
        [sys.executable, "-m", "hct", "train", "--config", config_path, "--no-progress"],
        cwd=REPO,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    metrics = tmp_path / "broken" / "metrics.jsonl"
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        steps = (
            [json.loads(line).get("step", 0) for line in metrics.read_text().splitlines()] if metrics.exists() else []
        )
        if steps and max(steps) >= 12:
            break
        time.sleep(0.02)
    os.kill(process.pid, signal.SIGKILL)
    process.wait()
    assert not (tmp_path / "broken" / "result.json").exists(), "the run ended before it was killed"

    resumed = train(config_path, progress=False)
    assert resumed.steps == straight.steps and resumed.epochs_completed == 4
    a, b = _weights(tmp_path / "straight"), _weights(tmp_path / "broken")
    assert all(torch.equal(a[k], b[k]) for k in a)
    epochs = [json.loads(line)["epoch"] for line in metrics.read_text().splitlines() if "val_auc" in line]
    assert epochs == [1, 2, 3, 4]


@pytest.mark.slow
def test_torchrun_two_processes_train_the_single_process_model(manifest, tmp_path):
    # Four steps of 4 micro-batches (2 per rank: exercises no_sync accumulation), keyed noise and dropout.
    # The two runs differ only in float summation order (all-reduce of per-rank sums versus one running
    # sum): given identical weights their gradients agree to ~2e-7 relative. How far that rounding grows
    # is the model's conditioning, not DDP's: with 1x1 feature maps (32-pixel patches, BatchNorm over 2
    # samples) or lr 1e-3, a 2e-7 weight change moves the next gradient by 30-90% and Adam turns that
    # into lr-sized (1e-3) weight changes, and a single process run with 2 threads instead of 1 drifts
    # as far. At image size with lr 1e-4 the runs end within ~2e-6, so 1e-5 leaves a 5x margin.
    settings = dict(
        stage="image",
        batch_size=8,
        micro_batch=2,
        lr=1e-4,
        epochs=2,
        max_steps=4,
        noise_std=0.1,
        overrides={"drop_rate": 0.3},
        model=MODEL,
        device="cpu",
    )
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # as each torchrun worker: CPU kernels pick their algorithm by thread count
    try:
        single = train(_config(manifest, tmp_path / "single", **settings), progress=False)
    finally:
        torch.set_num_threads(threads)
    config_path = _write(tmp_path / "ddp.json", _config(manifest, tmp_path / "ddp", **settings))
    run = hct_torchrun(
        "train", "--config", config_path, "--no-progress", env={**os.environ, "OMP_NUM_THREADS": "1"}, timeout=300
    )
    assert run.returncode == 0, run.stderr[-3000:]
    assert json.loads((tmp_path / "ddp" / "result.json").read_text())["steps"] == single.steps == 4

    def losses(folder):
        lines = [json.loads(line) for line in (folder / "metrics.jsonl").read_text().splitlines()]
        return torch.tensor([line["loss"] for line in lines if "loss" in line])

    torch.testing.assert_close(losses(tmp_path / "ddp"), losses(tmp_path / "single"), rtol=1e-5, atol=1e-6)
    a, b = _weights(tmp_path / "single"), _weights(tmp_path / "ddp")
    parameters = {name for name, _ in load_model(tmp_path / "single" / "last")[0].named_parameters()}
    for name in parameters:  # BatchNorm running statistics are rank 0's under gloo (see hct.runtime.distributed)
        torch.testing.assert_close(b[name], a[name], rtol=0, atol=1e-5)
