"""HCT attention maps against a direct computation of the Performer's attention."""

import numpy as np
import pytest
import torch
from einops import rearrange

from hct.errors import ConfigError
from hct.explain import attention_map, layer_input
from hct.models import create_model
from hct.models.attention import build_attention


def test_performer_relu_rows_match_hand_computation_and_forward():
    torch.manual_seed(0)
    layer = build_attention("performer_relu", 32, heads=4).eval()
    x = torch.randn(2, 32, 3, 5)
    tokens = rearrange(x, "b c h w -> b (h w) c")
    attn, fast = layer.attn, layer.attn.fast_attention
    q, k, v = (rearrange(p(tokens), "b n (h d) -> b h n d", h=4) for p in (attn.to_q, attn.to_k, attn.to_v))
    d = q.shape[-1]
    # Performer-RELU features: phi(u) = ReLU(d^-1/4 u W^T) + 1e-3 (performer-pytorch's defaults).
    phi_q = torch.relu(d**-0.25 * q @ fast.projection_matrix.T) + 1e-3
    phi_k = torch.relu(d**-0.25 * k @ fast.projection_matrix.T) + 1e-3
    full = phi_q @ phi_k.transpose(-1, -2)
    full = full / full.sum(-1, keepdim=True)  # (b, h, n, n)
    rows = torch.stack([layer.attention_weights(x, (i // 5, i % 5)).flatten(2) for i in range(15)], dim=2)
    torch.testing.assert_close(rows, full, rtol=1e-4, atol=1e-6)
    torch.testing.assert_close(rows.sum(-1), torch.ones(2, 4, 15))
    captured = {}
    handle = attn.to_out.register_forward_pre_hook(lambda m, a: captured.setdefault("out", a[0]))
    with torch.no_grad():
        layer(x)
    handle.remove()
    expected = rearrange(rows @ v, "b h n d -> b n (h d)")
    torch.testing.assert_close(captured["out"], expected, rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("kind", ["performer_softmax", "nystrom"])
def test_rows_sum_to_one_and_reproduce_output(kind):
    torch.manual_seed(0)
    layer = build_attention(kind, 32, heads=4).eval()
    x = torch.randn(1, 32, 4, 4)
    rows = torch.stack([layer.attention_weights(x, (i // 4, i % 4)).flatten(2) for i in range(16)], dim=2)
    torch.testing.assert_close(rows.sum(-1), torch.ones(1, 4, 16))
    if kind == "performer_softmax":
        attn = layer.attn
        v = rearrange(attn.to_v(rearrange(x, "b c h w -> b (h w) c")), "b n (h d) -> b h n d", h=4)
        captured = {}
        handle = attn.to_out.register_forward_pre_hook(lambda m, a: captured.setdefault("out", a[0]))
        with torch.no_grad():
            layer(x)
        handle.remove()
        torch.testing.assert_close(captured["out"], rearrange(rows @ v, "b h n d -> b n (h d)"), rtol=1e-4, atol=1e-5)


def test_attention_map_of_a_model():
    torch.manual_seed(0)
    model = create_model("hct_performer_relu").train()
    image = torch.randn(1, 256, 384)
    layers = model.attention_layers()
    first = next(iter(layers))
    result = attention_map(model, image, query=(200, 10))
    assert model.training and result.layer == first
    fh, fw = layer_input(model, layers[first], image[None]).shape[-2:]
    assert result.heads.shape == (8, fh, fw) and result.query == (200 * fh // 256, 10 * fw // 384)
    np.testing.assert_allclose(result.heads.sum(axis=(1, 2)), 1, rtol=1e-5)
    assert result.upsampled.shape == (256, 384) and result.upsampled.sum() == pytest.approx(1, rel=1e-5)
    last = list(layers)[-1]
    by_feature = attention_map(model, image, query=(0, 1), layer=last, coords="feature")
    assert by_feature.query == (0, 1) and by_feature.mean.sum() == pytest.approx(1, rel=1e-5)
    with pytest.raises(ConfigError):
        attention_map(create_model("gmic"), image, query=(0, 0))
    with pytest.raises(ConfigError):
        attention_map(model, image, query=(999, 0))


def test_picture_click_grid_covers_the_image_and_the_picture_takes_no_clicks():
    from hct.explain import picture_figure

    picture = np.zeros((40, 30, 3), dtype=np.uint8)
    fig = picture_figure(picture, click_grid=10, marker=(5, 5), boxes=[(1, 2, 10, 12)])
    grid = next(t for t in fig.data if t.name == "click to query")
    assert sorted(set(grid.y)) == [5, 15, 25, 35] and sorted(set(grid.x)) == [5, 15, 25]
    assert fig.data[0].type == "image" and fig.data[0].hoverinfo == "skip"
    assert fig.data[0].source.startswith("data:image/png;base64,")
    assert len(fig.layout.shapes) == 1  # the finding's box
    assert all(t.name != "click to query" for t in picture_figure(picture).data)


def test_a_kept_layer_input_gives_the_same_map_and_received_attention_sums_to_one():
    from hct.explain import attention_received

    torch.manual_seed(0)
    model = create_model("hct_performer_relu").eval()
    image = torch.randn(1, 256, 384)
    features = layer_input(model, None, image)
    fresh, kept = attention_map(model, image, (100, 100)), attention_map(model, image, (100, 100), features=features)
    np.testing.assert_array_equal(fresh.heads, kept.heads)
    received = attention_received(model, image, max_queries=4)
    assert received.shape == (256, 384) and received.sum() == pytest.approx(1, rel=1e-5)
