"""Training configs are checked whole, with clear messages, before any work starts."""

import json
import subprocess
import sys

import pytest

from hct.errors import ConfigError
from hct.train import TrainConfig, load_config, train
from tests.paths import REPO


@pytest.fixture
def manifest(tmp_path):
    path = tmp_path / "manifest.csv"
    path.write_text("image_id,path\n")
    return str(path)


def test_defaults_follow_the_paper(manifest):
    patch = TrainConfig(manifest=manifest)
    image = TrainConfig(manifest=manifest, stage="image")
    assert (patch.resolved_lr, patch.resolved_batch, patch.epochs, patch.patch_size) == (6e-4, 160, 80, 512)
    assert (image.resolved_lr, image.resolved_batch, image.input_size) == (2e-5, 32, (3328, 2560))
    assert patch.rho == 0.05 and patch.resolved_micro_batch == 160


@pytest.mark.parametrize(
    "changes, needle",
    [
        ({"learning_rate": 1e-3}, "Unknown config key"),
        ({"model": "resnet50"}, "model 'resnet50'"),
        ({"overrides": {"depth": 3}}, "unknown override"),
        ({"lr": -1}, "lr -1"),
        ({"epochs": 0}, "epochs 0"),
        ({"optimizer": "sgd"}, "optimizer 'sgd'"),
        ({"batch_size": 10, "micro_batch": 3}, "does not divide"),
        ({"input_size": "axb"}, "input_size"),
        ({"stage": "patch", "input_size": [64, 64], "patch_size": 128}, "larger than input_size"),
        ({"bf16": "yes"}, "bf16"),
        ({"init_checkpoint": "/nowhere/model"}, "init_checkpoint"),
    ],
)
def test_bad_values_are_refused(manifest, changes, needle):
    with pytest.raises(ConfigError, match=needle):
        TrainConfig.from_dict({"manifest": manifest, **changes})


def test_missing_manifest_is_refused_before_any_work(tmp_path):
    out = tmp_path / "run"
    with pytest.raises(ConfigError, match="does not exist"):
        train({"manifest": str(tmp_path / "absent.csv"), "out_dir": str(out)})
    with pytest.raises(ConfigError, match="needs `manifest`"):
        TrainConfig.from_dict({"model": "gmic"})
    assert not out.exists()


def test_corrupt_config_file_gives_a_clear_cli_error(tmp_path, manifest):
    bad = tmp_path / "bad.json"
    bad.write_text('{"manifest": "x.csv", "epochs": 3,,}')
    with pytest.raises(ConfigError, match="not valid JSON"):
        load_config(bad)
    run = subprocess.run(
        [sys.executable, "-m", "hct", "train", "--config", str(bad)],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert run.returncode == 2 and "not valid JSON" in run.stderr and "Traceback" not in run.stderr
    good = tmp_path / "good.json"
    good.write_text(json.dumps({"manifest": manifest, "epochs": 2, "stage": "image", "lr": 1e-4}))
    assert load_config(good).resolved_lr == 1e-4
