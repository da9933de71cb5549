"""Deformable convolution (Dai et al., 2017) in plain PyTorch ops, equal to torchvision's.

torchvision's CPU kernel of ``deform_conv2d`` is a serial loop, and its backward computes every
gradient (input, offsets, weight) whether asked or not. :func:`deform_conv2d_gather` samples each
kernel tap as a weighted sum of four rows of a channels-last view of the input (one
``embedding_bag``, whose backward gives both the input's and the bilinear weights' gradients
without materialising the four corners) and applies the weight as one matmul, so autograd runs only
what is asked and each step uses a parallel kernel.

Semantics follow torchvision (``torchvision/csrc/ops/cpu/deform_conv2d_kernel.cpp``): one offset
group, dilation 1; ``offset[:, 2k]`` and ``offset[:, 2k + 1]`` are the (dy, dx) of tap ``k``
(row-major over the kernel); tap ``k`` of output ``(oy, ox)`` samples the input at
``(oy * stride - padding + k // kw + dy, ox * stride - padding + k % kw + dx)`` by bilinear
interpolation of its four neighbours, a neighbour outside the map counting as zero. The gradients
are the derivatives of that formula with ``floor`` held constant, as torchvision's are.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

TORCHVISION_DEVICES = frozenset({"cuda"})  # device types where torchvision's kernel is the faster one


def _sample_positions(
    offset: torch.Tensor, kh: int, kw: int, stride: int, padding: int
) -> tuple[torch.Tensor, torch.Tensor]:
    """Input rows and columns sampled by each tap, both ``(B, Ho, Wo, kh * kw)``."""
    b, _, ho, wo = offset.shape
    taps = kh * kw
    off = offset.view(b, taps, 2, ho, wo).permute(0, 3, 4, 1, 2)
    device = offset.device
    tap_row = torch.arange(kh, device=device).repeat_interleave(kw)
    tap_col = torch.arange(kw, device=device).repeat(kh)
    rows = (torch.arange(ho, device=device) * stride - padding).view(ho, 1, 1) + tap_row
    cols = (torch.arange(wo, device=device) * stride - padding).view(1, wo, 1) + tap_col
    return off[..., 0] + rows.to(offset.dtype), off[..., 1] + cols.to(offset.dtype)


def _bilinear_corners(py: torch.Tensor, px: torch.Tensor, height: int, width: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Flat row indices into ``(B * H * W)`` and weights of the four neighbours, ``(..., 4)``.

    A neighbour outside the map gets weight zero (and a clamped, harmless index).
    """
    y0, x0 = py.detach().floor(), px.detach().floor()
    ly, lx = py - y0, px - x0
    batch_start = (torch.arange(py.shape[0], device=py.device) * (height * width)).view(-1, 1, 1, 1)
    indices, weights = [], []
    for dy, wy in ((0, 1 - ly), (1, ly)):
        yc = y0 + dy
        inside_y = (yc >= 0) & (yc <= height - 1)
        for dx, wx in ((0, 1 - lx), (1, lx)):
            xc = x0 + dx
            inside = inside_y & (xc >= 0) & (xc <= width - 1)
            indices.append(yc.clamp(0, height - 1).long() * width + xc.clamp(0, width - 1).long() + batch_start)
            weights.append(wy * wx * inside)
    return torch.stack(indices, -1), torch.stack(weights, -1)


def deform_conv2d_gather(
    x: torch.Tensor, offset: torch.Tensor, weight: torch.Tensor, stride: int = 1, padding: int = 1
) -> torch.Tensor:
    """Deformable convolution without bias: ``x (B, C, H, W)``, ``offset (B, 2 * kh * kw, Ho, Wo)``,
    ``weight (O, C, kh, kw)``; returns ``(B, O, Ho, Wo)`` (channels-last in memory).

    Sample positions are computed in at least float32, as torchvision's autocast rule does.
    """
    b, c, height, width = x.shape
    out_ch, in_ch, kh, kw = weight.shape
    ho, wo = (height + 2 * padding - kh) // stride + 1, (width + 2 * padding - kw) // stride + 1
    if in_ch != c or offset.shape != (b, 2 * kh * kw, ho, wo):
        raise ValueError(
            f"offset must be {(b, 2 * kh * kw, ho, wo)} (one offset group) for x {tuple(x.shape)} "
            f"and weight {tuple(weight.shape)}; got {tuple(offset.shape)}"
        )
    offset = offset.to(torch.promote_types(offset.dtype, torch.float32))
    index, bilinear = _bilinear_corners(*_sample_positions(offset, kh, kw, stride, padding), height, width)
    rows = x.permute(0, 2, 3, 1).reshape(b * height * width, c)  # a view when x is channels-last
    taps = F.embedding_bag(index.view(-1, 4), rows, mode="sum", per_sample_weights=bilinear.view(-1, 4).to(x.dtype))
    out = taps.view(b * ho * wo, kh * kw * c) @ weight.permute(0, 2, 3, 1).reshape(out_ch, kh * kw * c).t()
    return out.view(b, ho, wo, out_ch).permute(0, 3, 1, 2)


def deform_conv2d(
    x: torch.Tensor, offset: torch.Tensor, weight: torch.Tensor, stride: int = 1, padding: int = 1
) -> torch.Tensor:
    """Deformable convolution without bias (shapes as :func:`deform_conv2d_gather`): torchvision's
    kernel on the device types in ``TORCHVISION_DEVICES``, :func:`deform_conv2d_gather` elsewhere."""
    if x.device.type in TORCHVISION_DEVICES:
        from torchvision.ops import deform_conv2d as torchvision_deform_conv2d

        return torchvision_deform_conv2d(x, offset, weight, stride=stride, padding=padding)
    return deform_conv2d_gather(x, offset, weight, stride, padding)
