"""GMIC as NYU published it (Shen et al. 2021, nyukat/GMIC): global network, saliency maps, top-t%
aggregation, retrieval of the K most salient crops, local network, gated-attention MIL and fusion.

The global network is the project's ResNet-22 (:class:`~hct.models.network.HighResNet`, GMIC's
layout, no classifier); a 1x1 convolution and a sigmoid turn its feature map into one saliency map
per class (benign, malignant). ``y_global`` is the mean of each map's top ``percent_t`` share.
The K windows of the summed, min-max normalised maps with the largest mean, taken greedily without
overlap, name K crops of the full-resolution input; a ResNet-18 describes each, gated attention
(Ilse et al. 2018) weighs them into one vector (``y_local``), and a linear layer on it and the
global feature map's spatial maximum gives ``y_fusion``, GMIC's prediction. All outputs are
probabilities (sigmoids), one per class, as in their code.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import torch
import torch.nn.functional as F
from torch import nn
from torchvision.models import resnet18

from hct.models.network import STAGE_CHANNELS, HighResNet, NetworkConfig

# Their run_model.py's PERCENT_T_DICT: the top-t share each of the five published models was trained with.
NYU_PERCENT_T = {1: 0.02, 2: 0.03, 3: 0.03, 4: 0.05, 5: 0.1}
NYU_INPUT_SIZE = (2944, 1920)
NYU_ENSEMBLE = "nyu_gmic_ensemble"  # their MODEL_INDEX=ensemble, as a model name for load_model
BENIGN, MALIGNANT = 0, 1
LOCAL_DIM = 512  # ResNet-18's feature width


@dataclass(frozen=True)
class NyuGmicConfig:
    """GMIC's hyper-parameters (their run_model.py): ``num_crops`` is K, ``crop_size`` the crops'
    size in input pixels; ``percent_t`` depends on the model index (:data:`NYU_PERCENT_T`)."""

    percent_t: float = NYU_PERCENT_T[1]
    num_crops: int = 6
    crop_size: tuple[int, int] = (256, 256)
    post_processing_dim: int = STAGE_CHANNELS[-1]
    num_classes: int = 2
    mixer: str = "conv"  # the global network's blocks (as NetworkConfig.mixer)

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass
class GmicOutput:
    """One forward pass: probabilities ``(B, num_classes)`` of the three branches, the saliency maps
    ``(B, num_classes, h, w)``, the crops' upper-left corners ``(B, K, 2)`` (row, column in input
    pixels), the crops ``(B, K, crop_h, crop_w)`` and their attention weights ``(B, K)``."""

    y_global: torch.Tensor
    y_local: torch.Tensor
    y_fusion: torch.Tensor
    saliency: torch.Tensor
    crop_positions: torch.Tensor
    crops: torch.Tensor
    attention: torch.Tensor


def top_t_mean(saliency: torch.Tensor, percent_t: float) -> torch.Tensor:
    """Each map's mean over its top ``percent_t`` share of positions (at least one): ``(B, C)``."""
    flat = saliency.flatten(2)
    count = max(1, round(flat.shape[2] * percent_t))
    return flat.topk(count, dim=2).values.mean(dim=2)


@torch.no_grad()
def salient_windows(saliency: torch.Tensor, window: tuple[int, int], count: int) -> torch.Tensor:
    """Upper-left corners ``(B, count, 2)`` of ``count`` windows on the saliency grid, chosen greedily:
    the window with the largest mean of the summed, per-map min-max normalised maps, then that
    window is zeroed and the next is sought (the first maximum in row-major order wins a tie)."""
    flat = saliency.flatten(2)
    low, high = flat.min(dim=2).values, flat.max(dim=2).values
    scale = (high - low).clamp_min(torch.finfo(saliency.dtype).tiny)
    current = ((saliency - low[..., None, None]) / scale[..., None, None]).sum(dim=1, keepdim=True)
    rows = torch.arange(current.shape[2], device=saliency.device)[:, None]
    cols = torch.arange(current.shape[3], device=saliency.device)[None, :]
    corners = []
    for _ in range(count):
        pooled = F.avg_pool2d(current, window, stride=1)
        index = pooled.flatten(1).max(dim=1).indices
        top, left = index // pooled.shape[3], index % pooled.shape[3]
        corners.append(torch.stack([top, left], dim=1))
        inside = (
            (rows >= top[:, None, None])
            & (rows < top[:, None, None] + window[0])
            & (cols >= left[:, None, None])
            & (cols < left[:, None, None] + window[1])
        )
        current = current * (~inside).to(current.dtype)[:, None]
    return torch.stack(corners, dim=1)


def crop_windows(image: torch.Tensor, corners: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """Crops ``(B, K, h, w)`` of the first channel of ``image`` at upper-left ``corners``; a crop that
    leaves the image is kept at its bottom-right and padded with the image's minimum."""
    height, width = image.shape[2:]
    crops = []
    for plane, plane_corners in zip(image[:, 0], corners.tolist()):
        fill = plane.min()
        for top, left in plane_corners:
            r0, r1 = min(max(top, 0), height), min(max(top + size[0], 0), height)
            c0, c1 = min(max(left, 0), width), min(max(left + size[1], 0), width)
            crop = fill.expand(*size).clone()
            crop[size[0] - (r1 - r0) :, size[1] - (c1 - c0) :] = plane[r0:r1, c0:c1]
            crops.append(crop)
    return torch.stack(crops).view(image.shape[0], corners.shape[1], *size)


def grid_to_pixels(cells: torch.Tensor, grid: tuple[int, int], size: tuple[int, int]) -> torch.Tensor:
    """Saliency-grid positions as input pixels: ``round(cell / grid * size)`` in float64, ties to even."""
    as_float = {"dtype": torch.float64, "device": cells.device}
    return torch.round(cells.double() / torch.tensor(grid, **as_float) * torch.tensor(size, **as_float)).long()


class GatedAttentionMIL(nn.Module):
    """Gated attention pooling (Ilse et al. 2018) of K crop vectors, and the local classifier."""

    def __init__(self, dim: int, hidden: int, num_classes: int) -> None:
        super().__init__()
        self.attention_v = nn.Linear(dim, hidden, bias=False)
        self.gate_u = nn.Linear(dim, hidden, bias=False)
        self.attention_w = nn.Linear(hidden, 1, bias=False)
        self.classifier = nn.Linear(dim, num_classes, bias=False)

    def forward(self, h: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """``(z, attention, y_local)`` for crop vectors ``h`` ``(B, K, dim)``."""
        scores = self.attention_w(torch.sigmoid(self.gate_u(h)) * torch.tanh(self.attention_v(h)))
        attention = torch.softmax(scores.squeeze(-1), dim=1)
        z = (attention.unsqueeze(-1) * h).sum(dim=1)
        return z, attention, torch.sigmoid(self.classifier(z))


class NyuGmic(nn.Module):
    """NYU's GMIC with timm's interface: ``forward_features`` is the global network's feature map
    (where the ERF is taken), ``forward_head`` its ``y_global``; ``forward`` gives a :class:`GmicOutput`."""

    output_stride = 64

    def __init__(self, config: NyuGmicConfig, name: str = "nyu_gmic") -> None:
        super().__init__()
        self.name, self.config = name, config
        self.pretrained_cfg: dict = {}
        self.global_network = HighResNet(NetworkConfig(mixer="conv", num_classes=0), name=f"{name}_global")
        self.saliency_conv = nn.Conv2d(config.post_processing_dim, config.num_classes, 1, bias=False)
        self.local_network = resnet18(weights=None)
        self.local_network.fc = nn.Identity()
        self.mil = GatedAttentionMIL(LOCAL_DIM, 128, config.num_classes)
        self.fusion = nn.Linear(config.post_processing_dim + LOCAL_DIM, config.num_classes)

    # The global network's parts under the names of HighResNet's, so that stage ERFs, receptive
    # fields and Grad-CAM at any stage take it as they take the other models.
    @property
    def stem(self) -> nn.Conv2d:
        return self.global_network.stem

    @property
    def pool(self) -> nn.MaxPool2d:
        return self.global_network.pool

    @property
    def stages(self) -> nn.Sequential:
        return self.global_network.stages

    def forward_stem(self, x: torch.Tensor) -> torch.Tensor:
        return self.global_network.forward_stem(x)

    def attention_layers(self) -> dict:
        """None: GMIC's networks are convolutional (HighResNet's interface)."""
        return {}

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        """The global network's feature map ``(B, 256, h, w)``."""
        return self.global_network.forward_features(x)

    def saliency_maps(self, features: torch.Tensor) -> torch.Tensor:
        """Benign and malignant saliency maps ``(B, 2, h, w)`` in [0, 1] from the feature map."""
        return torch.sigmoid(self.saliency_conv(features))

    def forward_head(self, x: torch.Tensor, pre_logits: bool = False) -> torch.Tensor:
        """``y_global`` from the feature map (the saliency maps with ``pre_logits``)."""
        saliency = self.saliency_maps(x)
        return saliency if pre_logits else top_t_mean(saliency, self.config.percent_t)

    def crop_window(self, x: torch.Tensor, grid: tuple[int, int]) -> tuple[int, int]:
        """A crop's size on the saliency grid (as their code rounds it; at least 1, at most the grid,
        for inputs smaller than theirs)."""
        height, width = x.shape[2:]
        size = self.config.crop_size
        return (
            min(max(round(size[0] * grid[0] / height), 1), grid[0]),
            min(max(round(size[1] * grid[1] / width), 1), grid[1]),
        )

    def forward(self, x: torch.Tensor) -> GmicOutput:
        features = self.forward_features(x)
        saliency = self.saliency_maps(features)
        grid = saliency.shape[2:]
        cells = salient_windows(saliency, self.crop_window(x, grid), self.config.num_crops)
        corners = grid_to_pixels(cells, tuple(grid), tuple(x.shape[2:]))
        crops = crop_windows(x, corners, self.config.crop_size)
        batch, count = crops.shape[:2]
        local = self.local_network(crops.view(batch * count, 1, *crops.shape[2:]).expand(-1, 3, -1, -1))
        z, attention, y_local = self.mil(local.view(batch, count, -1))
        global_vector = features.amax(dim=(2, 3))
        y_fusion = torch.sigmoid(self.fusion(torch.cat([global_vector, z], dim=1)))
        return GmicOutput(
            top_t_mean(saliency, self.config.percent_t), y_local, y_fusion, saliency, corners, crops, attention
        )


class NyuGmicEnsemble(nn.Module):
    """Their ``MODEL_INDEX=ensemble``: the mean of the five models' predictions. Saliency maps, crops and
    attention are the first model's (their visualisation draws model 1's), and so are the global
    network's parts (``stages``...) that stage ERFs and Grad-CAM read."""

    def __init__(self, models: list[NyuGmic], name: str = NYU_ENSEMBLE) -> None:
        super().__init__()
        self.name, self.members = name, nn.ModuleList(models)
        self.config = models[0].config
        self.pretrained_cfg: dict = dict(models[0].pretrained_cfg)
        self.output_stride = models[0].output_stride

    @property
    def first(self) -> NyuGmic:
        return self.members[0]

    @property
    def stem(self) -> nn.Conv2d:
        return self.first.stem

    @property
    def pool(self) -> nn.MaxPool2d:
        return self.first.pool

    @property
    def stages(self) -> nn.Sequential:
        return self.first.stages

    def forward_stem(self, x: torch.Tensor) -> torch.Tensor:
        return self.first.forward_stem(x)

    def attention_layers(self) -> dict:
        return {}

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        """The first model's global feature map."""
        return self.first.forward_features(x)

    def forward(self, x: torch.Tensor) -> GmicOutput:
        outputs = [member(x) for member in self.members]
        mean = {
            name: torch.stack([getattr(o, name) for o in outputs]).mean(dim=0)
            for name in ("y_global", "y_local", "y_fusion")
        }
        first = outputs[0]
        return GmicOutput(
            **mean,
            saliency=first.saliency,
            crop_positions=first.crop_positions,
            crops=first.crops,
            attention=first.attention,
        )
