"""Which stage's output is back-propagated, and the theoretical receptive field of its positions.

A stage ``k`` (1-5) of the ResNet-22 variants is the feature map after ``stages[:k]``; stage 5 is
the network's output feature map (``forward_features``, after the final BN and ReLU), the paper's.
Along the path from the input to a stage, every layer is a convolution or max-pool ``(kernel,
stride, padding)`` or something position-wise (BN in eval mode is a fixed affine map, ReLU).
Output ``i`` of such a path depends only on inputs ``i * jump + start .. i * jump + end``; an
attention layer (global) or a deformable convolution (offsets learned from the content) makes the
field unbounded. For GMIC's output feature map ``jump`` is 64 and the field 883 pixels wide.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch import nn

from hct.errors import ConfigError
from hct.explain.options import STAGES
from hct.models.blocks import ACBlock, DeformableConv3x3, PreActBlock

OUTPUT_STAGE = 5
Layer = tuple[int, int, int]  # kernel, stride, padding


@dataclass(frozen=True)
class Geometry:
    """The layers from the input to a stage's output, along one axis (the networks are isotropic)."""

    layers: tuple[Layer, ...]
    bounded: bool

    @property
    def jump(self) -> int:
        """Input pixels between neighbouring outputs (the stage's stride)."""
        jump = 1
        for _, stride, _ in self.layers:
            jump *= stride
        return jump

    @property
    def span(self) -> tuple[int, int]:
        """``(start, end)``: output ``i`` sees inputs ``i * jump + start .. i * jump + end`` (inclusive)."""
        start = end = 0
        jump = 1
        for kernel, stride, padding in self.layers:
            start -= padding * jump
            end += (kernel - 1 - padding) * jump
            jump *= stride
        return start, end

    @property
    def size(self) -> int:
        """The theoretical receptive field's width in input pixels."""
        start, end = self.span
        return end - start + 1

    def output_size(self, length: int) -> int:
        """The stage's output length for an input ``length`` pixels long."""
        for kernel, stride, padding in self.layers:
            length = (length + 2 * padding - kernel) // stride + 1
        return length

    def centre(self, index: int) -> float:
        """The input coordinate at the centre of output ``index``'s receptive field."""
        start, end = self.span
        return index * self.jump + (start + end) / 2

    def window(self, index: int, length: int) -> tuple[int, int]:
        """``(lo, hi)``: the input pixels that output ``index`` can depend on, clipped to ``0..length``
        and with ``lo`` a multiple of ``jump``, so the network computes that output unchanged from
        the input cut to ``lo:hi`` (its strided grids stay aligned; zero padding stays where the
        image ends). Output ``index`` is then output ``index - lo // jump`` of the cut input."""
        start, end = self.span
        lo = max(0, (index * self.jump + start) // self.jump * self.jump)
        return lo, min(length, index * self.jump + end + 1)


def _conv(module: nn.Module) -> Layer:
    kernel, stride, padding = (
        v if isinstance(v, int) else v[0] for v in (module.kernel_size, module.stride, module.padding)
    )
    return kernel, stride, padding


def _block_layers(block: nn.Module) -> tuple[list[Layer], bool]:
    """The main path's layers of one block (the 1x1 shortcut lies inside them) and whether it is bounded."""
    if isinstance(block, PreActBlock):
        deformable = isinstance(block.conv1, DeformableConv3x3)
        first = _conv(block.conv1.conv if deformable else block.conv1)
        return [first, _conv(block.conv2)], not deformable
    if isinstance(block, ACBlock):
        return [_conv(block.conv2)], False
    raise ConfigError(f"no receptive field known for a {type(block).__name__}; use feature_fn without a stage")


def stage_geometry(model: nn.Module, stage: int = OUTPUT_STAGE) -> Geometry:
    """The geometry of ``model``'s stage ``stage`` (a ``HighResNet``: stem, pool and stages)."""
    _check_stage(model, stage)
    layers, bounded = [_conv(model.stem), _conv(model.pool)], True
    for blocks in model.stages[:stage]:
        for block in blocks:
            block_layers, block_bounded = _block_layers(block)
            layers += block_layers
            bounded = bounded and block_bounded
    return Geometry(tuple(layers), bounded)


def stage_features(model: nn.Module, stage: int = OUTPUT_STAGE) -> Callable[[torch.Tensor], torch.Tensor]:
    """The function from input to stage ``stage``'s feature map: ``forward_features`` for stage 5,
    else ``stages[:stage]`` after ``forward_stem`` (the last block's output, before any BN)."""
    _check_stage(model, stage)
    if stage == OUTPUT_STAGE:
        return model.forward_features
    stages = model.stages[:stage]
    return lambda x: stages(model.forward_stem(x))


def _check_stage(model: nn.Module, stage: int) -> None:
    if not all(hasattr(model, a) for a in ("stem", "pool", "stages", "forward_stem")):
        raise ConfigError(
            f"a stage ERF needs a network with stem, pool and stages (hct.models); "
            f"{type(model).__name__} has none: pass feature_fn instead"
        )
    if stage not in STAGES:
        raise ConfigError(f"stage must be one of {STAGES} (5: the output feature map), got {stage!r}")
