"""ERF maths against facts that do not depend on it: convolution supports, batched = one by one,
the reductions, a CNN's centred Gaussian ERF versus attention's global, content-led one, subsets."""

import numpy as np
import pytest
import torch
from torch import nn

from hct.errors import ConfigError, HCTError
from hct.explain import (
    ComputationCancelled,
    ERFEngine,
    compute_erf,
    compute_erfs,
    curve_band,
    erf_metrics,
    select_subset,
)
from hct.models import create_model, list_models


def _positive_conv_stack(k: int) -> nn.Sequential:
    torch.manual_seed(0)
    layers = []
    for _ in range(k):
        conv = nn.Conv2d(1, 1, 3, padding=1, bias=False)
        nn.init.uniform_(conv.weight, 0.5, 1.5)
        layers.append(conv)
    return nn.Sequential(*layers)


def test_single_conv_erf_is_its_kernel_on_3x3():
    conv = _positive_conv_stack(1)
    x = torch.randn(2, 1, 11, 11)
    result = compute_erf(conv, x, feature_fn=conv, reduction="mean")
    assert result.position == (5, 5)
    support = np.argwhere(result.map != 0)
    assert support.min(0).tolist() == [4, 4] and support.max(0).tolist() == [6, 6]
    # d out[5,5] / d x[5+di, 5+dj] = w[1+di, 1+dj] (cross-correlation), for every image.
    np.testing.assert_allclose(result.map[4:7, 4:7], conv[0].weight[0, 0].detach().numpy(), rtol=1e-6)


@pytest.mark.parametrize("k", [2, 3, 5])
def test_stack_of_k_convs_has_2k_plus_1_support(k):
    stack = _positive_conv_stack(k)
    result = compute_erf(stack, torch.randn(1, 1, 25, 25), feature_fn=stack, position=(12, 12))
    rows, cols = np.nonzero(result.map)
    assert (rows.min(), rows.max(), cols.min(), cols.max()) == (12 - k, 12 + k, 12 - k, 12 + k)
    assert np.count_nonzero(result.map) == (2 * k + 1) ** 2


@pytest.mark.parametrize("name", list_models())
def test_batched_equals_one_by_one(name):
    torch.manual_seed(1)
    model = create_model(name)
    x = torch.randn(3, 1, 256, 256)
    batched = compute_erf(model, x, keep_image_maps=True, engine=ERFEngine(batch_size=3))
    single = compute_erf(model, x, keep_image_maps=True, engine=ERFEngine(batch_size=1))
    scale = np.abs(single.image_maps).max()
    # Nystrom's iterative pseudo-inverse is ill-conditioned at random initialisation: a 1e-7 relative
    # change of the input moves its float32 ERF by 2.4e-3 of the maximum, and 1 thread against 2 by 7e-4.
    tolerance = 5e-3 if name == "hct_nystrom" else 1e-4
    assert np.abs(batched.image_maps - single.image_maps).max() <= tolerance * scale
    np.testing.assert_allclose(batched.map, single.image_maps.mean(0), atol=tolerance * scale)


def test_engine_matches_straightforward_backward_and_leaves_model_alone():
    torch.manual_seed(2)
    model = create_model("hct_performer_relu").train()
    x = torch.randn(2, 1, 256, 256)
    result = compute_erf(model, x, position=(1, 0), reduction="mean", keep_image_maps=True)
    assert model.training and all(p.requires_grad and p.grad is None for p in model.parameters())
    model.eval()
    for i in range(2):
        xi = x[i : i + 1].clone().requires_grad_(True)
        model.forward_features(xi)[:, :, 1, 0].sum().backward()
        expected = xi.grad[0, 0].numpy()
        # The engine restrides the input channels-last (other float32 kernels): a ReLU whose input lies
        # within rounding of zero can flip and move one position's gradient, so compare in L2.
        error = np.linalg.norm(result.image_maps[i] - expected) / np.linalg.norm(expected)
        assert error < 2e-3, error


def test_gmic_at_init_is_centred_and_gaussian():
    torch.manual_seed(0)
    result = compute_erf(create_model("gmic"), torch.randn(4, 1, 384, 384))
    metrics = erf_metrics(result)
    assert abs(metrics["offset_row_frac"]) < 0.03 and abs(metrics["offset_col_frac"]) < 0.03
    assert metrics["gaussian_r2_over_rows"] > 0.8 and metrics["gaussian_r2_over_columns"] > 0.8


def _blob_image(row: int, col: int, seed: int, size: int = 512) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    x = torch.full((1, size, size), -1.0)
    x[0, row : row + 160, col : col + 160] = 1 + 0.5 * torch.randn(160, 160, generator=g)
    return x


def test_cnn_erf_is_local_and_attention_erf_global_and_led_by_content():
    # GMIC's theoretical receptive field is 883 px (7x7/2 stem, pool, 20 3x3 convs): from output
    # (0, 0) no pixel beyond row/col 441 can matter. Global attention reaches everything, and at
    # initialisation already weights far positions by their content.
    x = torch.stack([_blob_image(340, 340, 1), _blob_image(340, 10, 2)])
    far = np.zeros((512, 512), bool)
    far[460:, :] = far[:, 460:] = True
    torch.manual_seed(0)
    gmic = compute_erf(create_model("gmic"), x, position=(0, 0), keep_image_maps=True)
    assert np.abs(gmic.image_maps[:, far]).max() == 0
    torch.manual_seed(0)
    hct = compute_erf(create_model("hct_performer_relu"), x, position=(0, 0), keep_image_maps=True)
    far_maps = hct.image_maps * far
    assert (far_maps.sum(axis=(1, 2)) > 0.005 * hct.image_maps.sum(axis=(1, 2))).all()
    bottom_right = far_maps[:, 340:, 340:].sum(axis=(1, 2)) / far_maps.sum(axis=(1, 2))
    assert bottom_right[0] > 1.3 * bottom_right[1]  # image 0 has its content there, image 1 not


def _lateral_batch():
    return _positive_conv_stack(2), torch.randn(4, 1, 20, 30), ["L", "R", "R", "L"]


def test_subset_keeps_the_chosen_side():
    conv, x, sides = _lateral_batch()
    result = compute_erf(conv, x, feature_fn=conv, lateralities=sides, subset="right", keep_image_maps=True)
    assert result.indices == [1, 2] and result.n == 2 and result.subset == "right"
    np.testing.assert_allclose(result.map, result.image_maps.mean(0), rtol=1e-6)


def test_progress_is_reported_after_each_batch():
    conv, x, sides = _lateral_batch()
    seen = []
    compute_erf(conv, x, feature_fn=conv, engine=ERFEngine(progress=lambda done, total: seen.append((done, total))))
    assert seen == [(1, 4), (2, 4), (3, 4), (4, 4)]


def test_curves_are_the_maps_sums_and_their_roots():
    conv, x, _ = _lateral_batch()
    result = compute_erf(conv, x, feature_fn=conv, reduction="mean")
    assert result.curve_over_columns.shape == (30,) and result.curve_over_rows.shape == (20,)
    np.testing.assert_allclose(result.curve_over_columns, result.map.sum(axis=0), rtol=1e-6)
    np.testing.assert_allclose(result.sqrt_curve_over_rows, np.sqrt(np.abs(result.map.sum(axis=1))), rtol=1e-6)


def test_curve_band_holds_the_mean_curve():
    conv, x, _ = _lateral_batch()
    result = compute_erf(conv, x, feature_fn=conv)
    low, high = curve_band(result, "columns", n_boot=200)
    assert (low <= result.curve_over_columns + 1e-6).all() and (high >= result.curve_over_columns - 1e-6).all()


def test_cancel_stops_with_a_library_error():
    conv, x, _ = _lateral_batch()
    with pytest.raises(ComputationCancelled, match="cancelled after 0 of 4"):
        compute_erf(conv, x, feature_fn=conv, engine=ERFEngine(cancel=lambda: True))
    assert issubclass(ComputationCancelled, HCTError)


@pytest.mark.parametrize(
    "lateralities, subset, message",
    [
        (None, "left", "needs one laterality"),
        (["R", "R"], "left", "no left breast"),
        (["R", "L"], "top", "unknown subset"),
    ],
)
def test_bad_subsets_are_clear_errors(lateralities, subset, message):
    with pytest.raises(ConfigError, match=message):
        select_subset(lateralities, subset, 2)


def test_position_off_the_map_is_a_clear_error():
    conv, x, _ = _lateral_batch()
    with pytest.raises(ConfigError, match=r"outside the 20x30 output feature map"):
        compute_erf(conv, x, feature_fn=conv, position=(50, 0))


def test_reductions_signed_absolute_and_positive_part():
    conv = _positive_conv_stack(1)
    torch.manual_seed(3)
    x = torch.randn(3, 1, 9, 9)
    feature = lambda t: conv(t) * t  # noqa: E731 - gradients of both signs
    signed = compute_erf(conv, x, feature_fn=feature, reduction="mean", keep_image_maps=True)
    assert (signed.image_maps < 0).any() and (signed.image_maps > 0).any()
    absolute = compute_erf(conv, x, feature_fn=feature, reduction="mean_abs")
    positive = compute_erf(conv, x, feature_fn=feature, reduction="positive")
    np.testing.assert_allclose(absolute.map, np.abs(signed.image_maps).mean(0), rtol=1e-6)
    np.testing.assert_allclose(positive.map, np.maximum(signed.image_maps, 0).mean(0), rtol=1e-6)
    with pytest.raises(ConfigError, match="unknown ERF reduction"):
        compute_erf(conv, x, feature_fn=feature, reduction="max")


def test_masks_of_preprocessed_like_items_give_the_mean_mask_and_breast_shares():
    conv = _positive_conv_stack(1)

    class Item:
        def __init__(self, tensor, mask):
            self.tensor, self.mask = tensor, mask

    masks = [np.zeros((9, 9), bool), np.ones((9, 9), bool)]
    result = compute_erf(conv, [Item(torch.randn(1, 9, 9), m) for m in masks], feature_fn=conv)
    np.testing.assert_allclose(result.mask, 0.5)
    np.testing.assert_allclose(result.image_breast_shares, [0.0, 1.0])


def test_models_and_subsets_computed_together_read_and_back_propagate_each_image_once():
    torch.manual_seed(0)
    models = {"gmic": create_model("gmic"), "hct": create_model("hct_performer_relu")}
    calls = {name: 0 for name in models}
    for name, model in models.items():
        forward = model.forward_features
        model.forward_features = lambda t, f=forward, n=name: calls.__setitem__(n, calls[n] + len(t)) or f(t)
    reads = []

    class Images(list):
        def __getitem__(self, i):
            reads.append(i)
            return list.__getitem__(self, i)

    x = torch.randn(5, 1, 128, 96)
    images = Images(x)
    subsets = {"all": [0, 1, 2], "right": [1, 3], "left": [0, 2, 4]}
    together = compute_erfs(models, images, subsets)
    assert calls == {"gmic": 5, "hct": 5} and sorted(reads) == [0, 1, 2, 3, 4]
    assert [(r.model_name, r.subset) for r in together] == [(m, s) for m in models for s in subsets]
    for result in together:
        alone = compute_erf(models[result.model_name], x[subsets[result.subset]])
        assert result.n == len(subsets[result.subset]) and result.indices == subsets[result.subset]
        # equal up to MKL's alignment-dependent rounding in HCT's attention (see tests/explain/test_torchrun.py)
        np.testing.assert_allclose(result.map, alone.map, rtol=1e-5, atol=1e-6 * np.abs(alone.map).max())
        np.testing.assert_allclose(
            result.image_curves_over_rows,
            alone.image_curves_over_rows,
            rtol=1e-5,
            atol=1e-6 * np.abs(alone.image_curves_over_rows).max(),
        )


def test_engine_refuses_a_bad_batch_size():
    with pytest.raises(ConfigError, match="batch_size"):
        ERFEngine(batch_size=0)
