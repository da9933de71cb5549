"""Global self-attention over the flattened positions of a spatial feature map (paper Fig. 3).

Each layer takes and returns a ``(B, C, H, W)`` feature map, so any input resolution works. The
token mixing itself comes from ``performer-pytorch`` (Performer-RELU, Performer-Softmax) and
``nystrom-attention`` (Nystromformer). Every layer can also return, for one query position, the
attention weights it puts on every position (``attention_weights``), computed from the same kernel
features the forward pass uses, in time linear in the number of positions.
"""

from __future__ import annotations

import threading
from functools import partial

import torch
from einops import rearrange
from nystrom_attention import NystromAttention as _Nystrom
from performer_pytorch import SelfAttention as _PerformerSelfAttention
from performer_pytorch.performer_pytorch import generalized_kernel, softmax_kernel
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
    ``kernel="softmax"`` is Performer-Softmax (positive orthogonal random features). The random
    projection is a buffer: it is saved with the weights and never redrawn, so a loaded model is
    deterministic.
    """

    def __init__(self, dim: int, heads: int = 8, dropout: float = 0.1, kernel: str = "relu") -> None:
        super().__init__(dim, heads)
        if kernel not in ("relu", "softmax"):
            raise ValueError(f"unknown Performer kernel {kernel!r}; use 'relu' or 'softmax'")
        self.kind = f"performer_{kernel}"
        self.attn = _PerformerSelfAttention(
            dim, heads=heads, dim_head=dim // heads, dropout=dropout,
            generalized_attention=kernel == "relu", kernel_fn=nn.ReLU(),
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

    The iterative pseudo-inverse of ``nystrom-attention`` normalises by maxima over the whole
    batch, which would make one image's output depend on the others; images are therefore mixed
    one at a time, so a prediction never depends on what else is in the batch.
    """

    kind = "nystrom"

    def __init__(self, dim: int, heads: int = 8, dropout: float = 0.1) -> None:
        super().__init__(dim, heads)
        self.attn = _Nystrom(dim, dim_head=dim // heads, heads=heads, dropout=dropout)
        # ``num_landmarks`` is read inside the library's forward; set it per call under a lock so
        # that concurrent callers with different resolutions do not race.
        self._landmarks_lock = threading.Lock()

    def _run(self, tokens: torch.Tensor, height: int, width: int, **kwargs):
        with self._landmarks_lock:
            self.attn.num_landmarks = max(height, width)
            return self.attn(tokens, **kwargs)

    def mix(self, tokens: torch.Tensor, height: int, width: int) -> torch.Tensor:
        return torch.cat([self._run(t[None], height, width) for t in tokens])

    def attention_rows(self, tokens: torch.Tensor, index: int, height: int, width: int) -> torch.Tensor:
        rows = []
        for t in tokens:
            _, (attn1, attn2_inv, attn3) = self._run(t[None], height, width, return_attn_matrices=True)
            rows.append((attn1[:, :, index : index + 1] @ attn2_inv @ attn3)[:, :, 0])
        rows = torch.cat(rows)
        # The Nystrom matrix approximates a row-stochastic matrix; normalise the tiny deviation.
        return rows / rows.sum(dim=-1, keepdim=True)


def build_attention(kind: str, dim: int, heads: int = 8, dropout: float = 0.1) -> SpatialAttention:
    """An attention layer of ``kind`` (one of :data:`ATTENTION_KINDS`) over ``dim`` channels."""
    if kind == "performer_relu":
        return PerformerAttention(dim, heads, dropout, kernel="relu")
    if kind == "performer_softmax":
        return PerformerAttention(dim, heads, dropout, kernel="softmax")
    if kind == "nystrom":
        return NystromAttention(dim, heads, dropout)
    raise ValueError(f"unknown attention kind {kind!r}; choose one of {ATTENTION_KINDS}")

