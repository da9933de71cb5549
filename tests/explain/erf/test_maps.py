"""Normalisation, display scales, clipping, shared colour ranges and display-resolution maps, and the
figures drawn from them."""

import base64
import io

import numpy as np
import PIL.Image
import pytest

from hct.errors import ConfigError
from hct.explain import MapView, erf_curves, erf_from_maps, erf_heatmaps, erf_small_multiples, table1_figure
from hct.explain.erf.maps import area_downsample, display_maps, normaliser, scaled
from hct.models.ref import ModelRef


def _bump(height=60, width=40, centre=(30, 20), sigma=3.0, scale=1.0, n=2):
    rows, cols = np.mgrid[:height, :width]
    bump = scale * np.exp(-((rows - centre[0]) ** 2 + (cols - centre[1]) ** 2) / (2 * sigma**2))
    masks = np.zeros((n, height, width), bool)
    masks[:, :, : width // 2] = True
    return np.repeat(bump[None], n, axis=0).astype(np.float32), masks


def test_area_and_peak_normalisation():
    values = np.array([[1.0, -3.0], [0.0, 4.0]])
    assert normaliser(values, "area") == 8.0 and normaliser(values, "peak") == 4.0 and normaliser(values, "none") == 1.0
    assert normaliser(np.zeros(3), "area") == 1.0
    with pytest.raises(ConfigError, match="unknown normalisation"):
        normaliser(values, "max")


def test_scales_keep_the_sign_and_log_counts_in_uniform_densities():
    values = np.array([-4.0, 0.0, 0.25])
    np.testing.assert_allclose(scaled(values, "sqrt"), [-2.0, 0.0, 0.5])
    np.testing.assert_allclose(scaled(values, "power_0.25"), [-np.sqrt(2), 0.0, np.sqrt(0.5)])
    np.testing.assert_allclose(scaled(np.array([0.01]), "log10", pixels=900), [1.0])  # 9 times uniform: log10(10)
    with pytest.raises(ConfigError, match="display scale"):
        scaled(values, "cube")


def test_area_downsample_keeps_the_mean_and_caps_the_long_side():
    array = np.random.default_rng(0).random((3328, 2560)).astype(np.float32)
    small = area_downsample(array, 1000)
    assert small.shape == (832, 640) and max(small.shape) <= 1000
    assert small.mean() == pytest.approx(array.mean(), rel=1e-5)
    assert area_downsample(array[:100, :80], 1000).shape == (100, 80)


def test_a_shared_colour_range_spans_every_model_and_clipping_lowers_it():
    wide, masks = _bump(sigma=12.0, scale=1.0)
    narrow, _ = _bump(sigma=2.0, scale=5.0)
    results = [
        erf_from_maps(np.abs(wide), masks=masks, model=ModelRef("hct", "hct")),
        erf_from_maps(narrow, model=ModelRef.of("gmic")),
    ]
    for r in results:
        r.reduction = "mean_abs"
    shared = display_maps(results, MapView(scale="linear", normalisation="none"))
    assert shared[0].zmax == shared[1].zmax == pytest.approx(5.0, rel=1e-4)
    own = display_maps(results, MapView(scale="linear", normalisation="none", shared=False))
    assert own[0].zmax == pytest.approx(1.0, rel=1e-4)
    clipped = display_maps(results, MapView(scale="linear", normalisation="none", clip=99))
    assert clipped[0].zmax < shared[0].zmax
    area = display_maps(results, MapView(scale="linear", normalisation="area", shared=False))
    assert [d.z.sum() for d in area] == [pytest.approx(1.0, rel=1e-4)] * 2
    assert shared[0].mask is not None and shared[1].mask is None


@pytest.mark.parametrize("field, value", [("scale", "cube"), ("clip", 20), ("normalisation", "sum")])
def test_bad_view_settings_are_clear_errors(field, value):
    with pytest.raises(ConfigError):
        MapView(**{field: value})


def test_heatmaps_draw_outline_centre_and_click_points_in_input_pixels():
    maps, masks = _bump(height=2400, width=1800)
    result = erf_from_maps(maps, masks=masks, model=ModelRef.of("gmic"))
    result.feature_shape, result.stride, result.position = (24, 18), (100.0, 100.0), (12, 9)
    fig = erf_heatmaps([result], MapView(), clickable=True)
    kinds = [trace.type for trace in fig.data]
    assert kinds == ["image", "scatter", "contour", "scatter", "scatter"]  # map, colour bar, outline, clicks, centre
    image = fig.data[0]
    png = PIL.Image.open(io.BytesIO(base64.b64decode(image.source.split(",", 1)[1])))
    assert max(png.size) <= 1000 and png.size == (600, 800) and image.dx == pytest.approx(3.0) and image.x0 == 1.0
    # a signed map at unit peak on the sqrt scale: a symmetric colour range up to the display map's peak
    top = float(np.sqrt(result.preview().max() / result.map.max()))
    assert (fig.data[1].marker.cmin, fig.data[1].marker.cmax) == pytest.approx((-top, top))
    assert len(fig.data[3].x) == 24 * 18
    clicked = (fig.data[3].y[5 * 18 + 7], fig.data[3].x[5 * 18 + 7])
    assert result.position_at(*clicked) == (5, 7)


def test_curves_are_normalised_per_model():
    wide, _ = _bump(sigma=12.0, scale=100.0)
    narrow, _ = _bump(sigma=2.0)
    results = [
        erf_from_maps(np.abs(wide), model=ModelRef("hct", "hct")),
        erf_from_maps(narrow, model=ModelRef.of("gmic")),
    ]
    for r in results:
        r.reduction = "mean_abs"
    fig = erf_curves(results, "columns", band=None)
    assert [float(np.sum(trace.y)) for trace in fig.data] == [pytest.approx(1.0, rel=1e-5)] * 2
    assert fig.data[1].y.max() > 3 * fig.data[0].y.max()  # the narrow bump stands out once areas are equal
    peak = erf_curves(results, "columns", band=None, normalisation="peak")
    assert [float(np.max(trace.y)) for trace in peak.data] == [pytest.approx(1.0)] * 2


def test_small_multiples_show_each_image_and_table1_overlays_models_per_cell():
    maps, _ = _bump(n=5)
    result = erf_from_maps(maps, model=ModelRef.of("gmic"))
    assert len(erf_small_multiples(result, max_images=4, columns=3).data) == 4
    results = []
    for model in ("gmic", "hct_performer_relu"):
        for subset in ("all", "right", "left"):
            results.append(erf_from_maps(maps, model=ModelRef.of(model), subset=subset))
    fig = table1_figure(results, band=None)
    assert len(fig.data) == 2 * 3 * 4  # models x rows x (ERF, Sqrt ERF) x (across rows, across columns)
    assert {trace.line.color for trace in fig.data} == {"#1f77b4", "#ff7f0e"}
