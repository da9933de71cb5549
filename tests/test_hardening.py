"""Odd values inside well-formed files: each case that used to end in a traceback gets a clear one-line
message of the input's own error class, or a correct read with a warning that reaches the user."""

from __future__ import annotations

import json
import pickle
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from streamlit.testing.v1 import AppTest

from hct.__main__ import main
from hct.data import read_mammogram
from hct.data.image.preprocess import preprocess
from hct.data.sets.roots import confine
from hct.errors import (
    ConfigError,
    DicomHeaderError,
    MammogramError,
    ModelCardError,
    PathError,
    PixelValueError,
    TrainConfigError,
)
from hct.explain.display.readable import model_pixel_spacing, smooth
from hct.models import create_model
from hct.models.checkpoints import load_model, save_checkpoint
from hct.train.config import load_config
from tests import fuzz_inputs as fuzz
from tests.paths import REPO

LONG = "x" * 300 + ".dcm"


# ---------------------------------------------------------------- pixels and DICOM header values


def test_a_float_tiff_with_nan_and_inf_is_read_with_a_count_and_preprocessed():
    values = fuzz.breast_pixels(0).astype(np.float32)
    values[0, :3] = [np.nan, np.inf, -np.inf]
    image = read_mammogram(fuzz.tiff_bytes(values))
    assert np.isfinite(image.pixels).all() and image.pixels[0, 0] == values[np.isfinite(values)].min()
    assert "3 of 3,072 pixels are NaN or infinite" in image.meta.warning
    assert torch.isfinite(preprocess(image, (64, 48)).tensor).all()


def test_a_tiff_without_a_finite_pixel_is_refused():
    with pytest.raises(PixelValueError, match="no finite pixel value"):
        read_mammogram(fuzz.tiff_bytes(np.full(fuzz.SHAPE, np.nan, np.float32)))


@pytest.mark.parametrize("slope", [b"1e38", b"1e300", b"inf", b"nan"])
def test_a_rescale_slope_that_overflows_is_refused_not_read_as_nan(slope):
    with pytest.raises((PixelValueError, DicomHeaderError), match="RescaleSlope"):
        read_mammogram(fuzz.dicom_bytes(raw={"RescaleSlope": ("DS", slope)}))


def test_a_rescale_slope_of_text_is_a_header_error():
    with pytest.raises(DicomHeaderError, match="RescaleSlope/RescaleIntercept that is not a number"):
        read_mammogram(fuzz.dicom_bytes(raw={"RescaleSlope": ("DS", b"abc")}))


@pytest.mark.parametrize("vr, value", [("LO", b"text"), ("DS", b"abc"), ("DS", b"0\\0"), ("DS", b"0.1")])
def test_an_unusable_pixel_spacing_falls_back_to_pixels_with_a_note(vr, value):
    image = read_mammogram(fuzz.dicom_bytes(raw={"PixelSpacing": (vr, value)}))
    assert image.meta.pixel_spacing is None
    assert "PixelSpacing" in image.meta.warning and "in pixels" in image.meta.warning
    heatmap = np.random.default_rng(0).random((64, 48)).astype(np.float32)
    pre = preprocess(image, (64, 48))
    assert np.isfinite(smooth(heatmap, 2.0, model_pixel_spacing(image.meta.pixel_spacing, pre.scale))).all()


def test_explain_sigma_on_a_zero_pixel_spacing_runs(tmp_path):
    image = tmp_path / "zero.dcm"
    image.write_bytes(fuzz.dicom_bytes(raw={"PixelSpacing": ("DS", b"0\\0")}))
    assert (
        main(
            [
                "explain",
                "--model",
                "gmic",
                "--image",
                str(image),
                "--size",
                "64x48",
                "--sigma",
                "2",
                "--device",
                "cpu",
                "--out",
                str(tmp_path / "out"),
            ]
        )
        == 0
    )


@pytest.mark.parametrize("width", [b"0", b"-5", b"abc"])
def test_a_window_width_below_one_shows_the_full_range_with_a_note(width):
    image = read_mammogram(fuzz.dicom_bytes(raw={"WindowWidth": ("DS", width)}))
    assert "Window Center/Width" in image.meta.warning and "full range" in image.meta.warning
    assert image.pixels.max() > 1000  # the modality values, not a window's output range


def test_a_12_bit_image_holding_larger_values_says_how_many():
    pixels = fuzz.breast_pixels(0)
    pixels[:2, :5] = 5000
    image = read_mammogram(fuzz.dicom_bytes(pixels=pixels))
    assert "10 pixels hold values above 4095 that BitsStored 12 allows" in image.meta.warning


@pytest.mark.parametrize("value, error", [(b"MONOCHROME3", DicomHeaderError), (b"YBR_FULL", MammogramError)])
def test_a_photometric_interpretation_that_is_not_grey_is_named(value, error):
    with pytest.raises(error, match=value.decode()):
        read_mammogram(fuzz.dicom_bytes(raw={"PhotometricInterpretation": ("CS", value)}))


def test_bits_stored_beyond_bits_allocated_is_a_header_error():
    with pytest.raises(DicomHeaderError, match="17 bits stored in 16 allocated"):
        read_mammogram(fuzz.dicom_bytes(raw={"BitsStored": ("US", (17).to_bytes(2, "little"))}))


def test_a_dicom_cut_inside_its_header_is_called_so():
    data = fuzz.dicom_bytes()
    with pytest.raises(MammogramError, match="cut short or damaged inside its header") as caught:
        read_mammogram(data[:400])
    assert "without pixel data" not in str(caught.value)


def test_a_multi_page_tiff_says_how_many_pages_and_which_was_read():
    pages = [fuzz.breast_pixels(0), fuzz.breast_pixels(1)[:32], fuzz.breast_pixels(2)]
    image = read_mammogram(fuzz.multipage_tiff(pages))
    assert image.meta.rows == 64 and "holds 3 pages; page 1 was read" in image.meta.warning


def test_the_read_command_prints_the_warning(tmp_path, capsys):
    path = tmp_path / "w.dcm"
    path.write_bytes(fuzz.dicom_bytes(raw={"WindowWidth": ("DS", b"0")}))
    assert main(["read", str(path)]) == 0
    assert "warning: Window Center/Width" in capsys.readouterr().err


# ---------------------------------------------------------------- model cards


@pytest.fixture
def checkpoint(tmp_path):
    torch.manual_seed(0)
    save_checkpoint(create_model("gmic"), tmp_path / "gmic.safetensors", input_size=(64, 48), metrics={"test_auc": 0.7})
    return tmp_path / "gmic.json"


@pytest.mark.parametrize(
    "field, value, expected",
    [
        ("metrics", [0.7], "metrics is a list [0.7], expected a JSON object"),
        ("overrides", "num_classes=2", "overrides is a string 'num_classes=2', expected a JSON object"),
        (
            "input_size",
            "64x48",
            "input_size is a string '64x48', expected null or [height, width], two integers in 8..16384",
        ),
        ("architecture", ["gmic"], "architecture is a list ['gmic'], expected a non-empty string"),
        ("parameters", "2.8M", "parameters is a string '2.8M', expected an integer >= 0"),
    ],
)
def test_a_card_field_of_the_wrong_type_is_named_by_models_predict_and_load(checkpoint, capsys, field, value, expected):
    card = json.loads(checkpoint.read_text())
    checkpoint.write_text(json.dumps({**card, field: value}))
    with pytest.raises(ModelCardError, match=expected.replace("[", r"\[").replace("]", r"\]")):
        load_model(str(checkpoint.with_suffix(".safetensors")))
    assert main(["models", "--checkpoints", str(checkpoint.parent)]) == 2
    assert expected in capsys.readouterr().err
    assert (
        main(
            [
                "predict",
                "--checkpoint",
                str(checkpoint.with_suffix(".safetensors")),
                "--data",
                "samples",
                "--device",
                "cpu",
                "--out",
                str(checkpoint.parent / "p.csv"),
            ]
        )
        == 2
    )
    assert expected in capsys.readouterr().err


def test_a_card_whose_overrides_build_no_model_is_a_card_error(checkpoint):
    card = json.loads(checkpoint.read_text())
    checkpoint.write_text(json.dumps({**card, "overrides": {"num_classes": -1}}))
    with pytest.raises(ModelCardError, match="override num_classes = -1: it must be an integer >= 1"):
        load_model(str(checkpoint.with_suffix(".safetensors")))


def test_imported_weights_that_are_nan_are_warned_about(tmp_path, capsys):
    from safetensors.torch import load_file

    state = load_file(REPO / "tests" / "fixtures" / "official_hct" / "state_dict.fp16.safetensors")
    torch.save(
        {k: torch.full_like(v.float(), float("nan")) if v.is_floating_point() else v for k, v in state.items()},
        tmp_path / "nan.pt",
    )
    assert (
        main(
            [
                "import-official",
                str(tmp_path / "nan.pt"),
                "--model",
                "hct_performer_relu",
                "--out",
                str(tmp_path / "nan.safetensors"),
            ]
        )
        == 0
    )
    assert "warning:" in capsys.readouterr().err
    card = json.loads((tmp_path / "nan.json").read_text())
    assert "weights are NaN or infinite" in card["training"]["warning"]


def test_a_protocol_0_pickle_is_named(tmp_path, capsys):
    (tmp_path / "old.pt").write_bytes(pickle.dumps({"weight": [1.0, 2.0]}, protocol=0))
    assert (
        main(
            [
                "import-official",
                str(tmp_path / "old.pt"),
                "--model",
                "hct_performer_relu",
                "--out",
                str(tmp_path / "o.safetensors"),
            ]
        )
        == 2
    )
    assert "a pickle of protocol 0 or 1" in capsys.readouterr().err


# ---------------------------------------------------------------- training configs


@pytest.fixture
def manifest(tmp_path):
    path = tmp_path / "manifest.csv"
    path.write_text("image_id,path,label,split\n")
    return path


def _refused_by_train_and_launch(tmp_path, config: dict, capsys) -> str:
    path = tmp_path / "config.json"
    path.write_text(json.dumps(config))
    assert main(["train", "--config", str(path)]) == 2
    by_train = capsys.readouterr().err
    assert main(["jobs", "--store", str(tmp_path / "jobs.sqlite"), "launch", "--config", str(path)]) == 2
    by_launch = capsys.readouterr().err
    assert by_train == by_launch and by_train.count("\n") == 1
    assert not Path(config["out_dir"]).exists() and not (tmp_path / "jobs").exists()  # nothing written
    return by_train


def test_num_classes_minus_one_is_refused_by_train_and_launch_alike(tmp_path, manifest, capsys):
    config = {"manifest": str(manifest), "overrides": {"num_classes": -1}, "out_dir": str(tmp_path / "run")}
    assert "override num_classes = -1: it must be an integer >= 1" in _refused_by_train_and_launch(
        tmp_path, config, capsys
    )


def test_a_manifest_that_is_not_csv_is_refused_before_queueing(tmp_path, capsys):
    (tmp_path / "m.csv").write_bytes(b"\x89PNG\r\n\x1a\n\x00\xff\xfe binary")
    config = {"manifest": str(tmp_path / "m.csv"), "out_dir": str(tmp_path / "run")}
    assert "is not a CSV text file" in _refused_by_train_and_launch(tmp_path, config, capsys)


def test_a_manifest_that_is_a_folder_is_called_a_folder(tmp_path, capsys):
    (tmp_path / "data").mkdir()
    config = {"manifest": str(tmp_path / "data"), "out_dir": str(tmp_path / "run")}
    assert "is a folder, not a CSV file" in _refused_by_train_and_launch(tmp_path, config, capsys)


def test_a_refused_config_leaves_the_out_folder_to_the_next_one(tmp_path, manifest):
    """A config refused at setup (no image of both labels) writes no config.json: the next config there is
    told its own problem, not that the folder holds another run."""
    from hct.train import train

    out = tmp_path / "run"
    with pytest.raises(ConfigError, match="lists no images"):
        train(
            {
                "manifest": str(manifest),
                "out_dir": str(out),
                "stage": "image",
                "input_size": [64, 48],
                "device": "cpu",
                "epochs": 1,
            }
        )
    assert not (out / "config.json").exists()
    with pytest.raises(ConfigError, match="lists no images"):
        train(
            {
                "manifest": str(manifest),
                "out_dir": str(out),
                "stage": "image",
                "input_size": [64, 64],
                "device": "cpu",
                "epochs": 1,
            }
        )


def test_a_damaged_image_cache_is_rebuilt_with_a_warning(tmp_path):
    from hct.data import generate_phantom
    from hct.train.data import load_bank

    generate_phantom(4, tmp_path / "p", size=(96, 64))
    first = load_bank(tmp_path / "p" / "manifest.csv", (64, 48))
    cached = next((tmp_path / "p" / "cache").glob("bank-*.pt"))
    cached.write_bytes(cached.read_bytes()[:100])
    with pytest.warns(RuntimeWarning, match="is damaged .* rebuilt"):
        again = load_bank(tmp_path / "p" / "manifest.csv", (64, 48))
    assert torch.equal(first.images, again.images)


def test_a_config_file_name_too_long_is_a_path_error():
    with pytest.raises(PathError, match="beyond the 255 a file name may have"):
        load_config(LONG)


def test_training_config_errors_are_their_own_class(tmp_path, manifest):
    with pytest.raises(TrainConfigError):
        load_config(_write(tmp_path / "c.json", {"manifest": str(manifest), "epochs": 0}))


def _write(path: Path, data: dict) -> Path:
    path.write_text(json.dumps(data))
    return path


# ---------------------------------------------------------------- paths and the command line


def test_a_name_over_255_characters_is_refused_by_the_cli_and_the_data_roots(tmp_path, capsys):
    assert main(["read", str(tmp_path / LONG)]) == 2
    assert "beyond the 255 a file name may have" in capsys.readouterr().err
    assert main(["data", "check", "--format", "manifest", str(tmp_path / (LONG + ".csv"))]) == 2
    assert "beyond the 255" in capsys.readouterr().err
    with pytest.raises(PathError, match="beyond the 255"):
        confine(REPO / "data" / LONG)


def test_a_folder_given_as_an_image_is_called_a_folder(tmp_path):
    with pytest.raises(PathError, match="is a folder, not a file"):
        read_mammogram(tmp_path)


def test_a_file_name_starting_with_a_dash(tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    Path("-x.dcm").write_bytes(fuzz.dicom_bytes())
    with pytest.raises(SystemExit):
        main(["read", "-x.dcm"])
    assert "put -- before it" in capsys.readouterr().err
    assert main(["read", "--", "-x.dcm"]) == 0
    assert '"source": "-x.dcm"' in capsys.readouterr().out


def test_a_closed_pipe_ends_quietly():
    env = {"PYTHONPATH": str(REPO), "PATH": "/usr/bin:/bin"}
    process = subprocess.Popen(
        [sys.executable, "-m", "hct", "models"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, cwd=REPO, env=env
    )
    process.stdout.readline()
    process.stdout.close()  # as `| head -1` does
    stderr = process.stderr.read().decode()
    assert process.wait(timeout=120) in (0, 141) and "Traceback" not in stderr and "BrokenPipe" not in stderr


# ---------------------------------------------------------------- the app's one safe wrapper


@pytest.mark.parametrize(
    "error, shown",
    [
        (MammogramError("scan.dcm is a corrupt DICOM file; export it again."), "scan.dcm is a corrupt DICOM file"),
        (ValueError("could not convert string to float: 'a'"), "ValueError: could not convert string to float"),
        (OSError(36, "File name too long", "data/" + "x" * 300), "File name too long"),
    ],
)
def test_every_page_runs_through_the_safe_wrapper(monkeypatch, tmp_path, error, shown):
    import hct.data

    import app.state  # noqa: F401 - imported first, so that it keeps the real builtin_samples

    def broken():
        raise error

    monkeypatch.setenv("HCT_APP_JOB_STORE", str(tmp_path / "jobs.sqlite"))
    monkeypatch.setattr(hct.data, "builtin_samples", broken)
    at = AppTest.from_file(str(REPO / "app" / "Home.py"), default_timeout=240)
    at.run()
    at.switch_page("../pages/images.py").run()
    assert not at.exception, at.exception
    assert at.error and shown in at.error[0].value and "\n" not in at.error[0].value
    assert at.error[0].value.startswith("The Images page")


def test_any_os_error_in_a_command_is_one_line(tmp_path, capsys):
    assert main(["eval", "--predictions", str(tmp_path / (LONG + ".csv")), "--out", str(tmp_path / "e")]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "File name too long; check the path" in err and "Traceback" not in err


def test_a_file_this_process_may_not_read_is_named(tmp_path, monkeypatch):
    import hct.paths

    image = tmp_path / "locked.dcm"
    image.write_bytes(fuzz.dicom_bytes())
    monkeypatch.setattr(hct.paths.os, "access", lambda path, mode: False)  # the tests run as root
    with pytest.raises(PathError, match="may not be read by this process"):
        read_mammogram(image)


def test_a_long_name_typed_on_the_training_page_is_a_message(monkeypatch, tmp_path):
    monkeypatch.setenv("HCT_APP_JOB_STORE", str(tmp_path / "jobs.sqlite"))
    at = AppTest.from_file(str(REPO / "app" / "Home.py"), default_timeout=240)
    at.run()
    at.switch_page("../pages/training.py").run()
    at.text_input(key="path-train-manifest").set_value(f"data/{LONG}.csv").run()
    assert not at.exception and at.error and "beyond the 255 a file name may have" in at.error[0].value


def test_every_model_override_has_a_range_rule():
    from dataclasses import fields

    from hct.models.network import NetworkConfig
    from hct.models.nyu_gmic import NyuGmicConfig
    from hct.models.registry import _OVERRIDE_RULES

    overridable = {f.name for config in (NetworkConfig, NyuGmicConfig) for f in fields(config)} - {"mixer"}
    assert overridable == set(_OVERRIDE_RULES)
