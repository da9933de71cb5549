"""captum attributions for one image: shapes, malignancy probability, method-specific facts."""

import numpy as np
import pytest
import torch

from hct.errors import ConfigError
from hct.explain import METHODS, attribute, occlusion_window, saliency
from hct.models import create_model


@pytest.fixture(scope="module")
def model_and_image():
    torch.manual_seed(0)
    return create_model("hct_performer_relu"), torch.randn(1, 128, 128)


@pytest.mark.parametrize("method", METHODS)
def test_each_method_gives_an_input_sized_map_and_the_probability(model_and_image, method):
    model, image = model_and_image
    options = {"steps": 4} if method == "integrated_gradients" else {}
    result = attribute(model, image, method, **options)
    with torch.no_grad():
        expected = torch.softmax(model.eval()(image[None]), dim=1)[0, 1].item()
    assert result.heatmap.shape == (128, 128) and np.isfinite(result.heatmap).all()
    assert result.probability == pytest.approx(expected, rel=1e-5) and result.target == 1
    assert result.original is None
    if method in ("saliency", "gradcam"):
        assert (result.heatmap >= 0).all()


def test_saliency_is_the_absolute_input_gradient_and_maps_back(model_and_image):
    model, image = model_and_image

    class Pre:
        tensor = image

        @staticmethod
        def to_original(heatmap):
            return np.kron(heatmap, np.ones((2, 2)))

    result = saliency(model, Pre())
    x = image[None].clone().requires_grad_(True)
    model.eval()(x)[0, 1].backward()
    expected = x.grad.abs()[0, 0].numpy()
    np.testing.assert_allclose(result.heatmap, expected, rtol=1e-5, atol=1e-5 * expected.max())
    assert result.original.shape == (256, 256)


def test_occlusion_window_scales_with_image():
    assert occlusion_window(3328, 2560) == ((416, 320), (208, 160))
    with pytest.raises(ConfigError):
        attribute(create_model("gmic"), torch.zeros(1, 64, 64), "lime")
