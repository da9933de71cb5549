"""``hct.explain.explain`` and its ``Explanation``: one image explained once, drawn and written many ways,
and the same object behind ``python -m hct explain`` (its PNG is the Explanation's, byte for byte)."""

import io

import numpy as np
import pydicom
import pytest
import torch
from PIL import Image

from hct.__main__ import main
from hct.data import builtin_samples, read_mammogram
from hct.explain import Explanation, Readability, explain
from hct.explain.cli import model_and_label


def _model(name: str = "hct_performer_relu"):
    return model_and_label(name, torch.device("cpu"), quiet=True)[0]  # the command's model


@pytest.fixture(scope="module")
def model():
    return _model()


@pytest.fixture(scope="module")
def image():
    return read_mammogram(builtin_samples()[0].path)


@pytest.fixture(scope="module")
def gradcam(model, image):
    return explain(model, image, "gradcam", (128, 96), Readability(99.0, 0.0, 0.5))


def test_an_attribution_is_explained_once_and_drawn_many_ways(gradcam, image):
    assert gradcam.heatmap.shape == gradcam.pre.size == (128, 96)
    assert 0.0 <= gradcam.probability <= 1.0 and gradcam.what.startswith("gradcam")
    assert gradcam.marker() is None and gradcam.shown.region is not None
    full = gradcam.overlay(long_side=None)
    assert full.shape == (*image.pixels.shape, 3) and full.dtype == np.uint8
    assert max(gradcam.overlay().shape[:2]) < max(full.shape[:2])  # display resolution by default
    assert np.asarray(Image.open(io.BytesIO(gradcam.png()))).shape == full.shape
    ds = pydicom.dcmread(io.BytesIO(gradcam.secondary_capture("test overlay")))
    assert ds.pixel_array.shape == full.shape and not ds.get("PatientName")
    saved = gradcam.arrays_to_save()
    assert saved["original"].shape == image.pixels.shape and saved["heatmap"] is gradcam.heatmap
    assert float(saved["probability"]) == gradcam.probability


def test_a_display_change_recomputes_no_map(gradcam):
    smoother = gradcam.drawn_with(Readability(99.0, 4.0, None))
    assert smoother.heatmap is gradcam.heatmap and smoother.pre is gradcam.pre
    assert smoother.shown is not gradcam.shown and smoother.shown.region is None
    assert gradcam.drawn_with(gradcam.readability) is gradcam
    assert not np.array_equal(smoother.overlay(), gradcam.overlay())
    assert not np.array_equal(gradcam.overlay(0.0), gradcam.overlay(1.0))


def test_attention_marks_its_query(model, image):
    explained = explain(model, image, "attention", (128, 96), query=(10, 20))
    assert explained.probability is None and explained.query is not None
    assert explained.marker() is not None and explained.arrays["heads"].ndim == 3
    assert set(explained.arrays_to_save()) == {"original", "heatmap", "heads", "mean", "query"}


def test_the_image_alone(gradcam):
    alone = Explanation(gradcam.image, gradcam.pre, None, "the image")
    assert alone.shown is None and alone.arrays_to_save() == {}
    assert alone.overlay().shape == gradcam.overlay().shape


def test_the_command_writes_the_explanations_png(tmp_path, image):  # GMIC: bit-for-bit repeatable on CPU
    path = builtin_samples()[0].path
    assert (
        main(
            [
                "explain",
                "--model",
                "gmic",
                "--image",
                path,
                "--method",
                "saliency",
                "--size",
                "128x96",
                "--percentile",
                "99",
                "--top-mass",
                "0.3",
                "--out",
                str(tmp_path),
            ]
        )
        == 0
    )
    expected = explain(_model("gmic"), image, "saliency", (128, 96), Readability(99.0, 0.0, 0.3)).png()
    written = next(tmp_path.glob("*_saliency.png")).read_bytes()
    assert written == expected
