"""The ResNet-22 variant shared by GMIC, Def-GMIC and HCT (paper, Fig. 4).

7x7 stem (stride 2), 3x3 max-pool (stride 2), five stages of two blocks (16, 32, 64, 128, 256
channels, first blocks strided), then BN, ReLU, global average pool and a linear classifier.
The last ``num_special_stages`` stages use the block that distinguishes the architecture: AC blocks
(HCT) or deformable blocks (Def-GMIC).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import torch
from torch import nn
from torchvision.ops import DeformConv2d

from hct.models.attention import SpatialAttention, build_attention
from hct.models.blocks import ACBlock, DeformableConv3x3, PreActBlock

STAGE_CHANNELS = (16, 32, 64, 128, 256)


@dataclass(frozen=True)
class NetworkConfig:
    """Everything needed to rebuild a network; stored in every checkpoint's model card.

    ``mixer`` is ``"conv"`` (GMIC), ``"deformable"`` (Def-GMIC) or an attention kind (HCT).
    """

    mixer: str = "conv"
    num_special_stages: int = 0
    num_classes: int = 2
    in_chans: int = 1
    first_stage_stride: int = 1
    drop_rate: float = 0.0
    attn_drop: float = 0.1
    heads: int = 8

    def to_dict(self) -> dict:
        return asdict(self)


class HighResNet(nn.Module):
    """A high-resolution mammography classifier; ``features`` gives the output feature map."""

    def __init__(self, config: NetworkConfig, name: str = "custom") -> None:
        super().__init__()
        self.name = name
        if not 0 <= config.num_special_stages <= len(STAGE_CHANNELS):
            raise ValueError(f"num_special_stages must be in 0..5, got {config.num_special_stages}")
        self.config = config
        self.stem = nn.Conv2d(config.in_chans, STAGE_CHANNELS[0], 7, stride=2, padding=3, bias=False)
        self.pool = nn.MaxPool2d(3, stride=2, padding=1)
        strides = (config.first_stage_stride, 2, 2, 2, 2)
        first_special = len(STAGE_CHANNELS) - config.num_special_stages
        stages, in_ch = [], STAGE_CHANNELS[0]
        for index, (out_ch, stride) in enumerate(zip(STAGE_CHANNELS, strides)):
            special = index >= first_special
            stages.append(nn.Sequential(
                self._block(in_ch, out_ch, stride, special),
                self._block(out_ch, out_ch, 1, special),
            ))
            in_ch = out_ch
        self.stages = nn.Sequential(*stages)
        self.final_bn = nn.BatchNorm2d(in_ch)
        self.relu = nn.ReLU(inplace=True)
        self.head_drop = nn.Dropout(config.drop_rate)
        self.classifier = nn.Linear(in_ch, config.num_classes)
        self._init_weights()

    def _block(self, in_ch: int, out_ch: int, stride: int, special: bool) -> nn.Module:
        mixer = self.config.mixer
        if not special or mixer == "conv":
            return PreActBlock(in_ch, out_ch, stride)
        if mixer == "deformable":
            return PreActBlock(in_ch, out_ch, stride, deformable=True)
        attention = build_attention(mixer, in_ch, self.config.heads, self.config.attn_drop)
        return ACBlock(in_ch, out_ch, stride, attention)

    def _init_weights(self) -> None:
        for module in self.modules():
            if isinstance(module, (nn.Conv2d, DeformConv2d)):
                nn.init.kaiming_normal_(module.weight, mode="fan_out", nonlinearity="relu")
            elif isinstance(module, nn.BatchNorm2d):
                nn.init.ones_(module.weight)
                nn.init.zeros_(module.bias)
        for module in self.modules():
            if isinstance(module, DeformableConv3x3):
                module.zero_offsets()

    @property
    def output_stride(self) -> int:
        """Input pixels per output feature-map position (64 for GMIC, 128 for reference HCT)."""
        return 4 * self.config.first_stage_stride * 16

    def features(self, x: torch.Tensor) -> torch.Tensor:
        """The output feature map ``(B, 256, H/s, W/s)`` before pooling (the ERF is taken here)."""
        x = self.pool(self.stem(x))
        x = self.stages(x)
        return self.relu(self.final_bn(x))

    def forward_head(self, features: torch.Tensor) -> torch.Tensor:
        return self.classifier(self.head_drop(features.mean(dim=(2, 3))))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Logits ``(B, num_classes)``."""
        return self.forward_head(self.features(x))

    def attention_layers(self) -> dict[str, SpatialAttention]:
        """Each AC block's attention layer by its module name (empty for CNNs)."""
        return {name: module for name, module in self.named_modules() if isinstance(module, SpatialAttention)}
