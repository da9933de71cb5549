"""Residual blocks of the ResNet-22 variants: plain (GMIC), deformable (Def-GMIC), AC (HCT).

All are pre-activation blocks as in GMIC: ``BN, ReLU`` first. A stage's first block has a 1x1
shortcut convolution (no BN) on the pre-activated input, whatever its stride, as GMIC's and HCT's
``_make_layer`` build it; the other blocks add their input unchanged.
"""

from __future__ import annotations

import torch
from torch import nn

from hct.models.attention import SpatialAttention
from hct.models.deform_conv import deform_conv2d


def conv3x3(in_ch: int, out_ch: int, stride: int = 1) -> nn.Conv2d:
    return nn.Conv2d(in_ch, out_ch, 3, stride=stride, padding=1, bias=False)


def _shortcut(in_ch: int, out_ch: int, stride: int, shortcut: bool) -> nn.Conv2d | None:
    if not shortcut:
        if stride != 1 or in_ch != out_ch:
            raise ValueError(
                f"a block from {in_ch} to {out_ch} channels at stride {stride} needs a shortcut convolution"
            )
        return None
    return nn.Conv2d(in_ch, out_ch, 1, stride=stride, bias=False)


class DeformableConv3x3(nn.Module):
    """A 3x3 deformable convolution (Dai et al.) whose offsets come from a 3x3 convolution.

    The offset convolution starts at zero, so at initialisation it equals a plain 3x3 conv.
    """

    def __init__(self, in_ch: int, out_ch: int, stride: int = 1) -> None:
        from torchvision.ops import DeformConv2d  # torchvision only where a deformable op needs it

        super().__init__()
        self.offset = nn.Conv2d(in_ch, 2 * 3 * 3, 3, stride=stride, padding=1, bias=True)
        self.conv = DeformConv2d(in_ch, out_ch, 3, stride=stride, padding=1, bias=False)
        self.zero_offsets()

    def zero_offsets(self) -> None:
        nn.init.zeros_(self.offset.weight)
        nn.init.zeros_(self.offset.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        conv = self.conv
        return deform_conv2d(x, self.offset(x), conv.weight, conv.stride[0], conv.padding[0])


class PreActBlock(nn.Module):
    """GMIC's BasicBlockV2: BN, ReLU, conv3x3(stride), BN, ReLU, conv3x3, + residual.

    ``shortcut`` gives the residual a 1x1 convolution (a stage's first block); ``deformable=True``
    makes the first convolution deformable (Def-GMIC).
    """

    def __init__(
        self, in_ch: int, out_ch: int, stride: int = 1, shortcut: bool = False, deformable: bool = False
    ) -> None:
        super().__init__()
        self.bn1 = nn.BatchNorm2d(in_ch)
        self.relu = nn.ReLU(inplace=True)
        self.downsample = _shortcut(in_ch, out_ch, stride, shortcut)
        self.conv1 = DeformableConv3x3(in_ch, out_ch, stride) if deformable else conv3x3(in_ch, out_ch, stride)
        self.bn2 = nn.BatchNorm2d(out_ch)
        self.conv2 = conv3x3(out_ch, out_ch)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.relu(self.bn1(x))
        residual = x if self.downsample is None else self.downsample(out)
        out = self.conv1(out)
        out = self.conv2(self.relu(self.bn2(out)))
        return out + residual


class ACBlock(nn.Module):
    """Attention-Convolution block (paper, Algorithm 1).

    BN, ReLU, global self-attention over all positions (+ the block input), BN, ReLU, then a 3x3
    convolution that sets both the stride and the number of output channels, + residual.
    """

    def __init__(
        self, in_ch: int, out_ch: int, stride: int, attention: SpatialAttention, shortcut: bool = False
    ) -> None:
        super().__init__()
        self.bn1 = nn.BatchNorm2d(in_ch)
        self.relu = nn.ReLU(inplace=True)
        self.downsample = _shortcut(in_ch, out_ch, stride, shortcut)
        self.attention = attention
        self.bn2 = nn.BatchNorm2d(in_ch)
        self.conv2 = conv3x3(in_ch, out_ch, stride)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.relu(self.bn1(x))
        residual = x if self.downsample is None else self.downsample(out)
        out = self.attention(out) + x
        out = self.conv2(self.relu(self.bn2(out)))
        return out + residual
