"""Global self-attention over the flattened positions of a spatial feature map (paper Fig. 3).

Each layer takes and returns a ``(B, C, H, W)`` feature map, so any input resolution works. The
token mixing itself comes from ``performer-pytorch`` (Performer-RELU, Performer-Softmax) and
``nystrom-attention`` (Nystromformer). Every layer can also return, for one query position, the
attention weights it puts on every position (``attention_weights``), computed from the same kernel
features the forward pass uses, in time linear in the number of positions.
"""

from __future__ import annotations

import math
from functools import partial

import torch
import torch.nn.functional as F
from einops import rearrange
from nystrom_attention import NystromAttention as _Nystrom
from performer_pytorch import SelfAttention as _PerformerSelfAttention
from performer_pytorch.performer_pytorch import FastAttention, generalized_kernel, softmax_kernel
from torch import nn

ATTENTION_KINDS = ("performer_relu", "performer_softmax", "nystrom")


def _to_tokens(x: torch.Tensor) -> torch.Tensor:
    return rearrange(x, "b c h w -> b (h w) c")


def _to_map(tokens: torch.Tensor, height: int, width: int) -> torch.Tensor:
    return rearrange(tokens, "b (h w) c -> b c h w", h=height, w=width)


class SpatialAttention(nn.Module):
    """Base class: flatten ``(B, C, H, W)`` to ``H*W`` tokens, mix them, reshape back."""

    kind: str

    def __init__(self, dim: int, heads: int) -> None:
        super().__init__()
        if dim % heads:
            raise ValueError(f"attention dim {dim} is not divisible by {heads} heads")
        self.dim, self.heads = dim, heads

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        _, _, height, width = x.shape
        # Attention runs in float32 even under bf16 autocast: the random-feature exponentials and
        # Nystrom's iterative pseudo-inverse lose too much in bf16, and this layer is cheap.
        with torch.autocast(x.device.type, enabled=False):
            return _to_map(self.mix(_to_tokens(x.float()), height, width), height, width)

    def mix(self, tokens: torch.Tensor, height: int, width: int) -> torch.Tensor:
        raise NotImplementedError

    def attention_weights(self, x: torch.Tensor, query: tuple[int, int]) -> torch.Tensor:
        """Attention of position ``query = (row, col)`` over all positions of feature map ``x``.

        ``x`` is this layer's input ``(B, C, H, W)``; returns ``(B, heads, H, W)``. Each head's
        weights are the row of the (approximated) attention matrix the forward pass applies.
        """
        _, _, height, width = x.shape
        row, col = query
        if not (0 <= row < height and 0 <= col < width):
            raise ValueError(f"query {query} is outside the {height}x{width} feature map")
        weights = self.attention_rows(_to_tokens(x), row * width + col, height, width)
        return weights.reshape(x.shape[0], self.heads, height, width)

    def attention_rows(self, tokens: torch.Tensor, index: int, height: int, width: int) -> torch.Tensor:
        raise NotImplementedError


class PerformerAttention(SpatialAttention):
    """FAVOR+ linear attention (Choromanski et al.), as used by HCT.

    ``kernel="relu"`` is Performer-RELU (generalized attention, ``f = ReLU``, ``h = 1``);
    ``kernel="softmax"`` is Performer-Softmax (positive orthogonal random features). As in the
    official HCT code, q/k/v have biases and the ``m = d log d`` random projection rows all have
    norm ``sqrt(d)`` (``ortho_scaling=1``). The projection is a buffer: it is saved with the weights
    and never redrawn, so a loaded model is deterministic.
    """

    def __init__(self, dim: int, heads: int = 8, dropout: float = 0.1, kernel: str = "relu") -> None:
        super().__init__(dim, heads)
        if kernel not in ("relu", "softmax"):
            raise ValueError(f"unknown Performer kernel {kernel!r}; use 'relu' or 'softmax'")
        self.kind = f"performer_{kernel}"
        self.attn = _PerformerSelfAttention(
            dim,
            heads=heads,
            dim_head=dim // heads,
            dropout=dropout,
            qkv_bias=True,
            generalized_attention=kernel == "relu",
            kernel_fn=nn.ReLU(),
        )
        self.attn.fast_attention = FastAttention(
            dim // heads, ortho_scaling=1, generalized_attention=kernel == "relu", kernel_fn=nn.ReLU()
        )

    def mix(self, tokens: torch.Tensor, height: int, width: int) -> torch.Tensor:
        return self.attn(tokens)

    def _features(self, tokens: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """The positive random features ``phi(Q)``, ``phi(K)`` of shape ``(B, heads, N, m)``."""
        attn, fast = self.attn, self.attn.fast_attention
        q, k = (rearrange(proj(tokens), "b n (h d) -> b h n d", h=self.heads) for proj in (attn.to_q, attn.to_k))
        if fast.generalized_attention:
            kernel = partial(generalized_kernel, kernel_fn=fast.kernel_fn, projection_matrix=fast.projection_matrix)
            return kernel(q), kernel(k)
        kernel = partial(softmax_kernel, projection_matrix=fast.projection_matrix)
        return kernel(q, is_query=True), kernel(k, is_query=False)

    def attention_rows(self, tokens: torch.Tensor, index: int, height: int, width: int) -> torch.Tensor:
        q_prime, k_prime = self._features(tokens)
        scores = torch.einsum("bhm,bhnm->bhn", q_prime[:, :, index], k_prime)
        return scores / scores.sum(dim=-1, keepdim=True)


class NystromAttention(SpatialAttention):
    """Nystromformer attention with ``q = max(H, W)`` landmarks, decided per input (paper, Sec. 3).

    The parameters are those of ``nystrom-attention``'s layer; the mixing is computed here so that
    each image's iterative pseudo-inverse is scaled by its own maxima (the library scales by maxima
    over the whole batch, which would make one image's output depend on the others). For a batch of
    one both give the same result; a batch gives each image what it would get alone.
    """

    kind = "nystrom"

    def __init__(self, dim: int, heads: int = 8, dropout: float = 0.1) -> None:
        super().__init__(dim, heads)
        self.attn = _Nystrom(dim, dim_head=dim // heads, heads=heads, dropout=dropout)

    def _matrices(self, tokens: torch.Tensor, landmarks: int):
        """``(attn1, attn2_inv, attn3, v, n)`` of the Nystrom approximation, per image."""
        attn, n = self.attn, tokens.shape[1]
        padding = (-n) % landmarks
        if padding:
            tokens = F.pad(tokens, (0, 0, padding, 0))
        q, k, v = (rearrange(t, "b n (h d) -> b h n d", h=self.heads) for t in attn.to_qkv(tokens).chunk(3, dim=-1))
        q = q * attn.scale
        group = math.ceil(n / landmarks)
        q_land = q.unflatten(2, (landmarks, group)).sum(3) / group
        k_land = k.unflatten(2, (landmarks, group)).sum(3) / group
        attn1 = (q @ k_land.transpose(-1, -2)).softmax(dim=-1)
        attn2 = (q_land @ k_land.transpose(-1, -2)).softmax(dim=-1)
        attn3 = (q_land @ k.transpose(-1, -2)).softmax(dim=-1)
        return attn1, _pinv_per_image(attn2, attn.pinv_iterations), attn3, v, n

    def mix(self, tokens: torch.Tensor, height: int, width: int) -> torch.Tensor:
        attn1, attn2_inv, attn3, v, n = self._matrices(tokens, max(height, width))
        out = (attn1 @ attn2_inv) @ (attn3 @ v)
        if self.attn.residual:
            out = out + self.attn.res_conv(v)
        return self.attn.to_out(rearrange(out, "b h n d -> b n (h d)"))[:, -n:]

    def attention_rows(self, tokens: torch.Tensor, index: int, height: int, width: int) -> torch.Tensor:
        attn1, attn2_inv, attn3, _, n = self._matrices(tokens, max(height, width))
        row = attn1.shape[2] - n + index  # padding sits in front
        rows = (attn1[:, :, row : row + 1] @ attn2_inv @ attn3)[:, :, 0, -n:]
        # The Nystrom matrix approximates a row-stochastic matrix; normalise the tiny deviation.
        return rows / rows.sum(dim=-1, keepdim=True)


def _pinv_per_image(x: torch.Tensor, iterations: int) -> torch.Tensor:
    """Moore-Penrose iterative pseudo-inverse of ``(B, heads, m, m)``, initial scale per image."""
    absolute = x.abs()
    col = absolute.sum(dim=-1).amax(dim=(-2, -1))
    row = absolute.sum(dim=-2).amax(dim=(-2, -1))
    z = x.transpose(-1, -2) / (col * row).view(-1, 1, 1, 1)
    eye = torch.eye(x.shape[-1], device=x.device, dtype=x.dtype)
    for _ in range(iterations):
        xz = x @ z
        z = 0.25 * z @ (13 * eye - (xz @ (15 * eye - (xz @ (7 * eye - xz)))))
    return z


def build_attention(kind: str, dim: int, heads: int = 8, dropout: float = 0.1) -> SpatialAttention:
    """An attention layer of ``kind`` (one of :data:`ATTENTION_KINDS`) over ``dim`` channels."""
    if kind == "performer_relu":
        return PerformerAttention(dim, heads, dropout, kernel="relu")
    if kind == "performer_softmax":
        return PerformerAttention(dim, heads, dropout, kernel="softmax")
    if kind == "nystrom":
        return NystromAttention(dim, heads, dropout)
    raise ValueError(f"unknown attention kind {kind!r}; choose one of {ATTENTION_KINDS}")
