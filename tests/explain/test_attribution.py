"""captum attributions for one image: shapes, malignancy probability, method-specific facts."""

import numpy as np
import pytest
import torch

from hct.data import preprocess
from hct.errors import ConfigError
from hct.explain import METHODS, as_batch, attribute, eval_mode, gradcam, occlusion_window, saliency
from hct.models import create_model

FAST = {
    "integrated_gradients": {"n_steps": 4},
    "smoothgrad": {"nt_samples": 2},
    "occlusion": {"sliding_window_shapes": (64, 64), "strides": (64, 64)},
}


@pytest.fixture(scope="module")
def model_and_image():
    torch.manual_seed(0)
    return create_model("hct_performer_relu"), torch.randn(1, 128, 128)


@pytest.mark.parametrize("method", METHODS)
def test_each_method_gives_an_input_sized_map_and_the_probability(model_and_image, method):
    model, image = model_and_image
    model.train()
    result = attribute(model, image, method, **FAST.get(method, {}))
    assert model.training, "the training flag is restored"
    with torch.no_grad():
        expected = torch.softmax(model.eval()(image[None]), dim=1)[0, 1].item()
    assert result.heatmap.shape == (128, 128) and np.isfinite(result.heatmap).all()
    assert result.probability == pytest.approx(expected, rel=1e-5) and result.target == 1
    assert result.original is None
    if method in ("saliency", "smoothgrad", "gradcam"):
        assert (result.heatmap >= 0).all()


def test_saliency_is_the_absolute_input_gradient_and_maps_back(model_and_image):
    model, _ = model_and_image
    pixels = np.zeros((256, 200), np.float32)
    pixels[40:220, :120] = 1000 + np.random.default_rng(0).random((180, 120)) * 100
    pre = preprocess(pixels, (128, 96), mode="acquired")
    result = saliency(model, pre)
    x = pre.tensor[None].clone().requires_grad_(True)
    model.eval()(x)[0, 1].backward()
    expected = x.grad.abs()[0, 0].numpy()
    np.testing.assert_allclose(result.heatmap, expected, rtol=1e-5, atol=1e-5 * expected.max())
    assert result.original.shape == (256, 200)


def test_captum_keyword_names_are_accepted_and_change_the_result(model_and_image):
    model, image = model_and_image
    a = attribute(model, image, "integrated_gradients", n_steps=2, baselines=0.0, internal_batch_size=2)
    b = attribute(model, image, "integrated_gradients", n_steps=2, baselines=1.0)
    assert not np.allclose(a.heatmap, b.heatmap)
    c = attribute(model, image, "occlusion", sliding_window_shapes=(1, 32, 32), strides=(1, 32, 32), baselines=0.0)
    assert len(np.unique(c.heatmap)) <= 16  # one value per 32x32 window of a 128x128 image
    with pytest.raises(TypeError):
        attribute(model, image, "integrated_gradients", steps=2)


def test_smoothgrad_averages_saliency_over_noisy_copies(model_and_image):
    model, image = model_and_image
    plain = saliency(model, image).heatmap
    noiseless = attribute(model, image, "smoothgrad", nt_samples=3, stdevs=0.0).heatmap
    np.testing.assert_allclose(noiseless, plain, rtol=1e-4, atol=1e-6 * plain.max())
    torch.manual_seed(0)
    noisy = attribute(model, image, "smoothgrad", nt_samples=3).heatmap
    assert not np.allclose(noisy, plain)


def test_gradcam_at_an_earlier_stage_is_finer(model_and_image):
    model, image = model_and_image
    last, early = gradcam(model, image), gradcam(model, image, layer="stages.2")
    assert (last.layer, early.layer) == ("stages.4", "stages.2")
    # distinct values along a row: the upsampled 1x1 map of the last stage is flat, stage 3's is not
    assert len(np.unique(early.heatmap.round(8))) > len(np.unique(last.heatmap.round(8)))
    with pytest.raises(ConfigError, match="stages.0"):
        gradcam(model, image, layer="stage9")


def test_inputs_are_normalised_and_eval_mode_restores_flags(model_and_image):
    model, image = model_and_image
    model.train()
    with eval_mode(model):
        assert not any(m.training for m in model.modules())
    assert all(m.training for m in model.modules())
    model.eval()
    x, pre = as_batch(model, image)
    assert x.shape == (1, 1, 128, 128) and pre is None
    with pytest.raises(ConfigError, match="one image"):
        as_batch(model, torch.zeros(2, 1, 8, 8))


def test_occlusion_window_scales_with_image():
    assert occlusion_window(3328, 2560) == ((416, 320), (208, 160))
    with pytest.raises(ConfigError):
        attribute(create_model("gmic"), torch.zeros(1, 64, 64), "lime")


@pytest.mark.parametrize("method", ["saliency", "gradcam"])
def test_the_probability_comes_from_the_methods_own_forward_pass(model_and_image, method):
    model, image = model_and_image
    passes = []
    handle = model.register_forward_hook(lambda *_: passes.append(1))
    try:
        attribute(model, image, method)
    finally:
        handle.remove()
    assert len(passes) == 1
