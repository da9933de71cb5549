"""The AC-block attention layers: spatial in and out, and the attention of one query position."""

import pytest
import torch
from einops import rearrange
from performer_pytorch.performer_pytorch import linear_attention

from hct.models.attention import build_attention


@pytest.mark.parametrize("kind", ["performer_relu", "performer_softmax", "nystrom"])
def test_spatial_in_spatial_out_any_size(kind):
    layer = build_attention(kind, 32).eval()
    for size in [(4, 6), (7, 5), (1, 1)]:
        x = torch.randn(2, 32, *size)
        assert layer(x).shape == x.shape


@pytest.mark.parametrize("kind", ["performer_relu", "performer_softmax", "nystrom"])
def test_attention_rows_sum_to_one(kind):
    torch.manual_seed(0)
    layer = build_attention(kind, 32).eval()
    x = torch.randn(2, 32, 6, 8)
    weights = layer.attention_weights(x, (2, 3))
    assert weights.shape == (2, 8, 6, 8)
    torch.testing.assert_close(weights.sum(dim=(-2, -1)), torch.ones(2, 8))


@pytest.mark.parametrize("kind", ["performer_relu", "performer_softmax"])
def test_performer_rows_reproduce_the_fast_attention(kind):
    """Weights @ V of every query equals what the linear-time forward computes."""
    torch.manual_seed(0)
    layer = build_attention(kind, 32).eval()
    x = torch.randn(1, 32, 3, 4)
    tokens = rearrange(x, "b c h w -> b (h w) c")
    v = rearrange(layer.attn.to_v(tokens), "b n (h d) -> b h n d", h=8)
    q_prime, k_prime = layer._features(tokens)
    expected = linear_attention(q_prime, k_prime, v)
    for index in range(12):
        w = layer.attention_weights(x, divmod(index, 4)).reshape(1, 8, 12)
        torch.testing.assert_close(torch.einsum("bhn,bhnd->bhd", w, v), expected[:, :, index], rtol=1e-4, atol=1e-5)


def test_performer_features_match_a_direct_computation():
    """phi(x) = ReLU(x W^T d^-1/4) + 1e-3, the Performer-RELU kernel, computed by hand."""
    torch.manual_seed(0)
    layer = build_attention("performer_relu", 32).eval()
    tokens = torch.randn(1, 10, 32)
    q_prime, k_prime = layer._features(tokens)
    w = layer.attn.fast_attention.projection_matrix
    q, k = (rearrange(p(tokens), "b n (h d) -> b h n d", h=8) for p in (layer.attn.to_q, layer.attn.to_k))
    q_direct, k_direct = (torch.relu((t * 4**-0.25) @ w.T) + 1e-3 for t in (q, k))
    torch.testing.assert_close(q_prime, q_direct)
    torch.testing.assert_close(k_prime, k_direct)
    row = torch.einsum("hm,hnm->hn", q_direct[0, :, 3], k_direct[0])
    torch.testing.assert_close(layer.attention_rows(tokens, 3, 2, 5)[0], row / row.sum(-1, keepdim=True))


def test_nystrom_rows_are_the_library_matrix_and_near_exact_for_small_maps():
    """Rows equal nystrom-attention's own attention matrix; with one token per landmark (a 1-row map)
    that matrix is softmax attention up to the iterative pseudo-inverse's error."""
    torch.manual_seed(0)
    layer = build_attention("nystrom", 16).eval()
    x = torch.randn(1, 16, 1, 5)
    w = layer.attention_weights(x, (0, 2))
    layer.attn.num_landmarks = 5  # the library layer's own setting for this map: q = max(H, W)
    tokens = rearrange(x, "b c h w -> b (h w) c")
    q, k, _ = layer.attn.to_qkv(tokens).chunk(3, dim=-1)
    q, k = (rearrange(t, "b n (h d) -> b h n d", h=8) for t in (q, k))
    exact = torch.softmax((q * layer.attn.scale) @ k.transpose(-1, -2), dim=-1)[:, :, 2]
    torch.testing.assert_close(w.reshape(1, 8, 5), exact, rtol=0, atol=0.02)
    _, full = layer.attn(tokens, return_attn=True)
    library_row = full[:, :, 2] / full[:, :, 2].sum(-1, keepdim=True)
    torch.testing.assert_close(w.reshape(1, 8, 5), library_row)


def test_nystrom_batch_equals_the_library_one_image_at_a_time():
    """Each image of a batch gets exactly what nystrom-attention gives it alone (per-image pinv scaling)."""
    torch.manual_seed(0)
    layer = build_attention("nystrom", 32).eval()
    x = torch.randn(3, 32, 6, 9) * torch.tensor([1.0, 5.0, 0.2]).view(3, 1, 1, 1)
    layer.attn.num_landmarks = 9
    tokens = rearrange(x, "b c h w -> b (h w) c")
    with torch.no_grad():
        alone = torch.cat([layer.attn(t[None]) for t in tokens])
        torch.testing.assert_close(layer.mix(tokens, 6, 9), alone, rtol=1e-5, atol=1e-6)
