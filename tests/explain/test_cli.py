"""``python -m hct erf``, ``table1`` and ``explain`` on tiny synthetic PNG mammograms."""

import csv
import json

import numpy as np
import pytest
from PIL import Image

from hct.__main__ import main


@pytest.fixture(scope="module")
def image_dir(tmp_path_factory):
    folder = tmp_path_factory.mktemp("pngs")
    rows, cols = np.mgrid[:300, :240]
    for i, centre in enumerate((0, 239, 0, 239, 0)):  # breasts against the left, right, left... edge
        breast = ((rows - 150) ** 2 / 120**2 + (cols - centre) ** 2 / 170**2) < 1
        pixels = np.where(breast, 30000 + 3000 * np.random.default_rng(i).standard_normal((300, 240)), 500)
        Image.fromarray(np.clip(pixels, 0, 65535).astype(np.uint16)).save(folder / f"img{i}.png")
    return folder


def _erf(image_dir, tmp_path, *args):
    return main(["erf", "--images", str(image_dir), "--cache-dir", str(tmp_path / "cache"), *args])


def test_erf_command_writes_maps_curves_metrics_and_figures(image_dir, tmp_path, capsys):
    out = tmp_path / "erf"
    assert (
        _erf(
            image_dir,
            tmp_path,
            "--models",
            "gmic",
            "hct_performer_relu",
            "--n",
            "2",
            "--size",
            "256x256",
            "--out",
            str(out),
        )
        == 0
    )
    assert "random initialisation" in capsys.readouterr().err
    for name in (
        "erf_gmic_all.npz",
        "erf_hct_performer_relu_all.npz",
        "erf_curves.csv",
        "erf_metrics.csv",
        "erf.png",
        "erf.html",
        "plotly.min.js",
    ):
        assert (out / name).stat().st_size > 0, name
    data = np.load(out / "erf_gmic_all.npz")
    assert data["map"].shape == (256, 256) and data["image_curves_over_columns"].shape == (2, 256)
    assert str(data["reduction"]) == "mean_abs" and int(data["stage"]) == 5
    with open(out / "erf_metrics.csv") as f:
        metrics = list(csv.DictReader(f))
    assert [m["model"] for m in metrics] == ["gmic", "hct_performer_relu"] and metrics[0]["n"] == "2"
    html = (out / "erf.html").read_text()
    assert 'src="plotly.min.js"' in html and "cdn.plot.ly" not in html


def test_erf_of_a_subset_stage_and_position(image_dir, tmp_path):
    assert (
        _erf(
            image_dir,
            tmp_path,
            "--models",
            "gmic",
            "--n",
            "2",
            "--subset",
            "right",
            "--size",
            "128x128",
            "--position",
            "3,0",
            "--stage",
            "3",
            "--reduction",
            "positive",
            "--out",
            str(tmp_path / "r"),
        )
        == 0
    )
    data = np.load(tmp_path / "r" / "erf_gmic_right.npz")
    assert data["position"].tolist() == [3, 0] and int(data["stage"]) == 3 and str(data["reduction"]) == "positive"


@pytest.mark.parametrize(
    "args, message",
    [
        (["--n", "3", "--subset", "right"], "more than the 2 right breast images"),
        (["--position", "40,0"], "outside the 2x2 output feature map"),
        (["--stage", "6"], None),
    ],
)
def test_erf_bad_input_gets_a_clear_message(image_dir, tmp_path, capsys, args, message):
    argv = ["--models", "gmic", "--size", "128x128", "--n", "1", "--out", str(tmp_path / "bad"), *args]
    if message is None:
        with pytest.raises(SystemExit):
            _erf(image_dir, tmp_path, *argv)
        assert "invalid choice: 6" in capsys.readouterr().err
        return
    assert _erf(image_dir, tmp_path, *argv) == 2
    assert message in capsys.readouterr().err


def test_table1_writes_the_grid_metrics_and_the_sample(image_dir, tmp_path):
    out = tmp_path / "t1"
    assert (
        main(
            [
                "table1",
                "--models",
                "gmic",
                "hct_performer_relu",
                "--images",
                str(image_dir),
                "--n",
                "2",
                "--size",
                "128x128",
                "--seed",
                "3",
                "--cache-dir",
                str(tmp_path / "cache"),
                "--out",
                str(out),
            ]
        )
        == 0
    )
    for name in (
        "table1.png",
        "table1.html",
        "table1_metrics.csv",
        "table1_curves.csv",
        "table1_images.csv",
        "table1_settings.json",
        "erf_gmic_left.npz",
        "erf_hct_performer_relu_right.npz",
    ):
        assert (out / name).stat().st_size > 0, name
    with open(out / "table1_metrics.csv") as f:
        rows = list(csv.DictReader(f))
    assert [(r["model"], r["subset"]) for r in rows] == [
        (m, s) for m in ("gmic", "hct_performer_relu") for s in ("all", "right", "left", "right - left")
    ]
    assert all(float(r["breast_share"]) > 0 for r in rows if r["subset"] != "right - left")
    with open(out / "table1_images.csv") as f:
        images = list(csv.DictReader(f))
    assert {r["seed"] for r in images} == {"3"} and len(images) <= 4
    assert sum(r["right"] == "True" for r in images) == sum(r["left"] == "True" for r in images) == 2
    assert json.loads((out / "table1_settings.json").read_text())["seed"] == 3


def test_table1_with_n_larger_than_a_side_is_a_clear_error(image_dir, tmp_path, capsys):
    assert (
        main(
            [
                "table1",
                "--models",
                "gmic",
                "--images",
                str(image_dir),
                "--n",
                "3",
                "--size",
                "128x128",
                "--no-cache",
                "--out",
                str(tmp_path / "t"),
            ]
        )
        == 2
    )
    assert "only 2 right breasts among the 5 images; lower N to at most 2" in capsys.readouterr().err


def test_explain_commands(image_dir, tmp_path):
    for method in ("gradcam", "attention"):
        assert (
            main(
                [
                    "explain",
                    "--model",
                    "hct_performer_relu",
                    "--image",
                    str(image_dir / "img0.png"),
                    "--method",
                    method,
                    "--size",
                    "256x256",
                    "--out",
                    str(tmp_path / "x"),
                ]
            )
            == 0
        )
        for suffix in ("npz", "png", "html"):
            assert (tmp_path / "x" / f"img0_hct_performer_relu_{method}.{suffix}").exists()
    assert (
        main(
            [
                "explain",
                "--model",
                "gmic",
                "--image",
                str(image_dir / "img0.png"),
                "--method",
                "attention",
                "--size",
                "128x128",
                "--out",
                str(tmp_path / "y"),
            ]
        )
        == 2
    )


def test_explain_writes_the_overlay_as_acquired_and_a_secondary_capture(image_dir, tmp_path):
    import pydicom

    out = tmp_path / "sc"
    assert (
        main(
            [
                "explain",
                "--model",
                "gmic",
                "--image",
                str(image_dir / "img1.png"),
                "--method",
                "gradcam",
                "--layer",
                "stages.2",
                "--size",
                "128x96",
                "--sigma",
                "3",
                "--secondary-capture",
                "--out",
                str(out),
            ]
        )
        == 0
    )
    png = Image.open(out / "img1_gmic_gradcam.png")
    assert png.size == (240, 300) and png.mode == "RGB"  # the original geometry, full resolution
    ds = pydicom.dcmread(out / "img1_gmic_gradcam.dcm")
    assert ds.pixel_array.shape == (300, 240, 3) and not ds.get("PatientName")  # type 2: present, empty
    assert np.load(out / "img1_gmic_gradcam.npz")["original"].shape == (300, 240)
