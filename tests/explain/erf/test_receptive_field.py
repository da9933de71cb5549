"""Theoretical receptive fields, stage ERFs, and back-propagation through the window only."""

import numpy as np
import pytest
import torch

from hct.errors import ConfigError
from hct.explain import ERFEngine, compute_erf, stage_features, stage_geometry
from hct.models import create_model


def test_gmic_output_field_is_883_pixels_at_stride_64():
    geometry = stage_geometry(create_model("gmic"))
    assert (geometry.size, geometry.jump, geometry.bounded) == (883, 64, True)


@pytest.mark.parametrize(
    "name, bounded_stages", [("gmic", {1, 2, 3, 4, 5}), ("def_gmic", {1, 2, 3}), ("hct_performer_relu", {1, 2, 3})]
)
def test_attention_and_deformable_stages_are_unbounded(name, bounded_stages):
    model = create_model(name)
    assert {s for s in range(1, 6) if stage_geometry(model, s).bounded} == bounded_stages


@pytest.mark.parametrize("name", ["gmic", "hct_performer_relu"])
@pytest.mark.parametrize("stage", [1, 3, 5])
def test_geometry_predicts_the_stage_output_shape(name, stage):
    model = create_model(name).eval()
    geometry = stage_geometry(model, stage)
    with torch.no_grad():
        features = stage_features(model, stage)(torch.zeros(1, 1, 203, 150))
    assert tuple(features.shape[-2:]) == (geometry.output_size(203), geometry.output_size(150))


def test_stage_erf_stays_inside_its_receptive_field():
    torch.manual_seed(0)
    model = create_model("gmic")
    result = compute_erf(model, torch.randn(1, 1, 256, 256), stage=2, engine=ERFEngine(windowed=False))
    geometry = stage_geometry(model, 2)
    rows, cols = np.nonzero(result.map)
    for index, found in ((result.position[0], rows), (result.position[1], cols)):
        lo, hi = geometry.window(index, 256)
        assert found.min() >= lo and found.max() < hi
        assert (
            hi - found.max() <= geometry.jump and found.min() - index * geometry.jump - geometry.span[0] < geometry.jump
        )


def _spied(model):
    """The model with its output feature function recording the input shapes it is given."""
    shapes, forward = [], model.forward_features

    def spy(x):
        shapes.append(tuple(x.shape[-2:]))
        return forward(x)

    model.forward_features = spy
    return model, shapes


@pytest.mark.parametrize("position", ["centre", (1, 14)])  # centre, and a position near the top border
def test_windowed_gmic_map_equals_the_full_image_map(position):
    torch.manual_seed(0)
    model, shapes = _spied(create_model("gmic"))
    x = torch.randn(1, 1, 1024, 960)
    windowed = compute_erf(model, x, position=position, reduction="mean", keep_image_maps=True)
    assert all(h < 1024 and w < 960 for h, w in shapes), shapes  # it did back-propagate a window
    full = compute_erf(
        model, x, position=position, reduction="mean", keep_image_maps=True, engine=ERFEngine(windowed=False)
    )
    assert windowed.position == full.position and windowed.input_centre == full.input_centre
    scale = np.abs(full.image_maps).max()
    assert np.abs(windowed.image_maps - full.image_maps).max() <= 1e-5 * scale
    assert np.count_nonzero(windowed.image_maps) == np.count_nonzero(full.image_maps)


def test_hct_output_erf_keeps_the_full_image():
    torch.manual_seed(0)
    model, shapes = _spied(create_model("hct_performer_relu"))
    compute_erf(model, torch.randn(1, 1, 256, 192))
    assert shapes == [(256, 192)]


def test_bad_stages_are_clear_errors():
    with pytest.raises(ConfigError, match="stage must be one of"):
        compute_erf(create_model("gmic"), torch.randn(1, 1, 64, 64), stage=6)
    conv = torch.nn.Conv2d(1, 1, 3, padding=1)
    with pytest.raises(ConfigError, match="has no stages"):
        compute_erf(conv, torch.randn(1, 1, 16, 16), stage=2)
