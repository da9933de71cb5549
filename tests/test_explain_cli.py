"""``python -m hct erf`` and ``python -m hct explain`` on tiny synthetic PNG mammograms."""

import csv

import numpy as np
import pytest
from PIL import Image

from hct.__main__ import main


@pytest.fixture(scope="module")
def image_dir(tmp_path_factory):
    folder = tmp_path_factory.mktemp("pngs")
    rows, cols = np.mgrid[:300, :240]
    for i, centre in enumerate((0, 239, 0)):  # breasts against the left, right, left edge
        breast = ((rows - 150) ** 2 / 120 ** 2 + (cols - centre) ** 2 / 170 ** 2) < 1
        pixels = np.where(breast, 30000 + 3000 * np.random.default_rng(i).standard_normal((300, 240)), 500)
        Image.fromarray(np.clip(pixels, 0, 65535).astype(np.uint16)).save(folder / f"img{i}.png")
    return folder


def test_erf_command_writes_maps_curves_metrics_and_figures(image_dir, tmp_path, capsys):
    out = tmp_path / "erf"
    code = main(["erf", "--models", "gmic", "hct_performer_relu", "--images", str(image_dir), "--n", "2",
                 "--size", "256x256", "--out", str(out)])
    assert code == 0
    assert "random initialisation" in capsys.readouterr().err
    for name in ("erf_gmic_all.npz", "erf_hct_performer_relu_all.npz", "erf_curves.csv", "erf_metrics.csv", "erf.png", "erf.html", "plotly.min.js"):
        assert (out / name).stat().st_size > 0, name
    data = np.load(out / "erf_gmic_all.npz")
    assert data["map"].shape == (256, 256) and data["image_curves_over_columns"].shape == (2, 256)
    with open(out / "erf_metrics.csv") as f:
        metrics = list(csv.DictReader(f))
    assert [m["model"] for m in metrics] == ["gmic", "hct_performer_relu"] and metrics[0]["n"] == "2"
    html = (out / "erf.html").read_text()
    assert 'src="plotly.min.js"' in html and "cdn.plot.ly" not in html


def test_erf_subset_and_explain_commands(image_dir, tmp_path):
    assert main(["erf", "--models", "gmic", "--images", str(image_dir), "--n", "5", "--subset", "right",
                 "--size", "128x128", "--position", "1,0", "--out", str(tmp_path / "r")]) == 0
    assert np.load(tmp_path / "r" / "erf_gmic_right.npz")["position"].tolist() == [1, 0]
    for method in ("gradcam", "attention"):
        assert main(["explain", "--model", "hct_performer_relu", "--image", str(image_dir / "img0.png"),
                     "--method", method, "--size", "256x256", "--out", str(tmp_path / "x")]) == 0
        for suffix in ("npz", "png", "html"):
            assert (tmp_path / "x" / f"img0_hct_performer_relu_{method}.{suffix}").exists()
    assert main(["explain", "--model", "gmic", "--image", str(image_dir / "img0.png"), "--method", "attention",
                 "--size", "128x128", "--out", str(tmp_path / "y")]) == 2


def test_explain_writes_the_overlay_as_acquired_and_a_secondary_capture(image_dir, tmp_path):
    import pydicom

    out = tmp_path / "sc"
    assert main(["explain", "--model", "gmic", "--image", str(image_dir / "img1.png"), "--method", "gradcam",
                 "--layer", "stages.2", "--size", "128x96", "--sigma", "3", "--secondary-capture", "--out", str(out)]) == 0
    png = Image.open(out / "img1_gmic_gradcam.png")
    assert png.size == (240, 300) and png.mode == "RGB"  # the original geometry, full resolution
    ds = pydicom.dcmread(out / "img1_gmic_gradcam.dcm")
    assert ds.pixel_array.shape == (300, 240, 3) and "PatientName" not in ds
    assert np.load(out / "img1_gmic_gradcam.npz")["original"].shape == (300, 240)
