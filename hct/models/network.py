"""The ResNet-22 variant shared by GMIC, Def-GMIC and HCT (paper, Fig. 4), in the official layout.

7x7 stem (stride 2, padding 3), 3x3 max-pool (stride 2, no padding), five stages of two blocks (16,
32, 64, 128, 256 channels; first blocks strided and given a 1x1 shortcut convolution, as GMIC's and
HCT's ``_make_layer`` do), then BN, ReLU, global average pool and a linear classifier. The last
``num_mixer_stages`` stages use the block that distinguishes the architecture: AC blocks (HCT) or
deformable blocks (Def-GMIC).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import torch
from torch import nn

from hct.models.attention import SpatialAttention, build_attention
from hct.models.blocks import ACBlock, DeformableConv3x3, PreActBlock

STAGE_CHANNELS = (16, 32, 64, 128, 256)
# 2: the official layout (whiterabbit-ai/hct, nyukat/GMIC); 1: this project's first layout (stem
# max-pool padded by 1, no q/k/v bias, no shortcut convolution in GMIC's first stage).
ARCHITECTURE_VERSION = 2


@dataclass(frozen=True)
class NetworkConfig:
    """Everything needed to rebuild a network; stored in every checkpoint's model card.

    ``mixer`` is ``"conv"`` (GMIC), ``"deformable"`` (Def-GMIC) or an attention kind (HCT);
    ``num_mixer_stages`` counts the last stages whose blocks use it.
    """

    mixer: str = "conv"
    num_mixer_stages: int = 0
    num_classes: int = 2
    in_chans: int = 1
    first_stage_stride: int = 1
    drop_rate: float = 0.0
    attn_drop: float = 0.1
    heads: int = 8

    def to_dict(self) -> dict:
        return asdict(self)


class HighResNet(nn.Module):
    """A high-resolution mammography classifier with timm's interface: ``forward_features`` gives
    the output feature map (the ERF is taken there), ``forward_head`` the logits from it."""

    def __init__(self, config: NetworkConfig, name: str = "custom") -> None:
        super().__init__()
        self.name = name
        if not 0 <= config.num_mixer_stages <= len(STAGE_CHANNELS):
            raise ValueError(f"num_mixer_stages must be in 0..5, got {config.num_mixer_stages}")
        self.config = config
        self.pretrained_cfg: dict = {}
        self.stem = nn.Conv2d(config.in_chans, STAGE_CHANNELS[0], 7, stride=2, padding=3, bias=False)
        self.pool = nn.MaxPool2d(3, stride=2, padding=0)
        strides = (config.first_stage_stride, 2, 2, 2, 2)
        first_mixer = len(STAGE_CHANNELS) - config.num_mixer_stages
        stages, in_ch = [], STAGE_CHANNELS[0]
        for index, (out_ch, stride) in enumerate(zip(STAGE_CHANNELS, strides)):
            mixer = index >= first_mixer
            stages.append(
                nn.Sequential(
                    self._block(in_ch, out_ch, stride, mixer, shortcut=True),
                    self._block(out_ch, out_ch, 1, mixer, shortcut=False),
                )
            )
            in_ch = out_ch
        self.stages = nn.Sequential(*stages)
        self.final_bn = nn.BatchNorm2d(in_ch)
        self.relu = nn.ReLU(inplace=True)
        self.head_drop = nn.Dropout(config.drop_rate)
        # num_classes 0: no classifier, forward_head gives the pooled features (timm's convention)
        self.classifier = nn.Linear(in_ch, config.num_classes) if config.num_classes else nn.Identity()
        self._init_weights()

    def _block(self, in_ch: int, out_ch: int, stride: int, mixer: bool, shortcut: bool) -> nn.Module:
        kind = self.config.mixer
        if not mixer or kind == "conv":
            return PreActBlock(in_ch, out_ch, stride, shortcut=shortcut)
        if kind == "deformable":
            return PreActBlock(in_ch, out_ch, stride, shortcut=shortcut, deformable=True)
        attention = build_attention(kind, in_ch, self.config.heads, self.config.attn_drop)
        return ACBlock(in_ch, out_ch, stride, attention, shortcut=shortcut)

    def _init_weights(self) -> None:
        """As the official code: kaiming normal (fan_in) for every convolution, PyTorch's defaults
        elsewhere; deformable offsets start at zero (a plain convolution at initialisation)."""
        deformable = {id(m.conv) for m in self.modules() if isinstance(m, DeformableConv3x3)}
        for module in self.modules():
            if isinstance(module, nn.Conv2d) or id(module) in deformable:
                nn.init.kaiming_normal_(module.weight)
        for module in self.modules():
            if isinstance(module, DeformableConv3x3):
                module.zero_offsets()

    @property
    def output_stride(self) -> int:
        """Input pixels per output feature-map position (64 for GMIC, 128 for reference HCT)."""
        return 4 * self.config.first_stage_stride * 16

    def forward_stem(self, x: torch.Tensor) -> torch.Tensor:
        """The stem's feature map (7x7 convolution, then max-pool): the input of stage 1."""
        return self.pool(self.stem(x))

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        """The output feature map ``(B, 256, h, w)`` before pooling (the ERF is taken here)."""
        return self.relu(self.final_bn(self.stages(self.forward_stem(x))))

    def forward_head(self, x: torch.Tensor, pre_logits: bool = False) -> torch.Tensor:
        """Logits from the output feature map (or the pooled features with ``pre_logits``)."""
        pooled = self.head_drop(x.mean(dim=(2, 3)))
        return pooled if pre_logits else self.classifier(pooled)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Logits ``(B, num_classes)``."""
        return self.forward_head(self.forward_features(x))

    def attention_layers(self) -> dict[str, SpatialAttention]:
        """Each AC block's attention layer by its module name (empty for CNNs)."""
        return {name: module for name, module in self.named_modules() if isinstance(module, SpatialAttention)}
