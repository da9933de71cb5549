"""Where an HCT attention layer looks from one query position: the attention weights of that
position over every position of the layer's feature map, per head and averaged over heads.

The weights come from the layer's own ``attention_weights`` (the same kernel features the forward
pass uses, linear time), so they are exactly the row of the attention matrix the model applies.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from hct.errors import ConfigError

COORDS = ("input", "feature")


@dataclass
class AttentionMap:
    """Attention of ``query`` (feature-map ``(row, col)`` of ``layer``) over all its positions.

    ``heads`` is ``(heads, h, w)`` and ``mean`` ``(h, w)``, each summing to one; ``upsampled`` is
    ``mean`` resized bilinearly to the model input ``(H, W)`` and renormalised to sum to one;
    ``query_input`` the query cell's centre in input pixels; ``original`` the upsampled map at the
    original image's size (given a ``Preprocessed``).
    """

    layer: str
    query: tuple[int, int]
    query_input: tuple[float, float]
    heads: np.ndarray
    mean: np.ndarray
    upsampled: np.ndarray
    original: np.ndarray | None = None


class _Captured(Exception):
    """Stops the forward pass once the attention layer's input is captured."""


def upsample(heatmap: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """Bilinear resize of an ``h x w`` map to ``size``."""
    tensor = torch.as_tensor(np.asarray(heatmap, dtype=np.float32))[None, None]
    return F.interpolate(tensor, size=size, mode="bilinear", align_corners=False)[0, 0].numpy()


def layer_input(model: nn.Module, layer: nn.Module, x: torch.Tensor) -> torch.Tensor:
    """The feature map ``layer`` receives when ``model.forward_features`` runs on ``x`` (no grad, stops there)."""
    captured = {}

    def hook(_module, args):
        captured["x"] = args[0].detach()
        raise _Captured

    handle = layer.register_forward_pre_hook(hook)
    try:
        with torch.no_grad():
            getattr(model, "forward_features", model)(x)
    except _Captured:
        pass
    finally:
        handle.remove()
    if "x" not in captured:
        raise ConfigError("the attention layer was not reached by the model's forward pass")
    return captured["x"]


def attention_map(model: nn.Module, image, query: tuple[float, float], layer: str | None = None,
                  coords: str = "input") -> AttentionMap:
    """Attention weights of one query position of an HCT attention layer over all positions.

    ``image``: a ``(C, H, W)`` / ``(1, C, H, W)`` tensor or a ``Preprocessed``. ``query`` is
    ``(row, col)`` in input pixels (``coords="input"``) or in the layer's feature map
    (``"feature"``). ``layer`` names one of ``model.attention_layers()`` (default: the first, the
    finest feature map).
    """
    if coords not in COORDS:
        raise ConfigError(f"coords must be one of {COORDS}, got {coords!r}")
    layers = model.attention_layers() if hasattr(model, "attention_layers") else {}
    if not layers:
        raise ConfigError(f"{getattr(model, 'name', type(model).__name__)} has no attention layers; "
                          "attention maps need an HCT model (choose another method for CNNs)")
    name = layer or next(iter(layers))
    if name not in layers:
        raise ConfigError(f"unknown attention layer {name!r}; choose one of {list(layers)}")
    preprocessed = None if isinstance(image, torch.Tensor) else image
    x = image if preprocessed is None else preprocessed.tensor
    x = x[None] if x.dim() == 3 else x
    param = next(model.parameters())
    x = x.to(device=param.device, dtype=param.dtype)
    height, width = x.shape[-2:]

    flags = [(m, m.training) for m in model.modules()]
    model.eval()
    try:
        features = layer_input(model, layers[name], x)
        fh, fw = features.shape[-2:]
        if coords == "input":
            if not (0 <= query[0] < height and 0 <= query[1] < width):
                raise ConfigError(f"query {query} is outside the {height}x{width} input image")
            row, col = min(int(query[0] * fh / height), fh - 1), min(int(query[1] * fw / width), fw - 1)
        else:
            row, col = int(query[0]), int(query[1])
            if not (0 <= row < fh and 0 <= col < fw):
                raise ConfigError(f"query {(row, col)} is outside layer {name}'s {fh}x{fw} feature map")
        with torch.no_grad():
            weights = layers[name].attention_weights(features, (row, col))[0].float().cpu().numpy()
    finally:
        for module, flag in flags:
            module.training = flag

    mean = weights.mean(axis=0)
    up = np.clip(upsample(mean, (height, width)), 0, None)
    up /= up.sum()
    original = None if preprocessed is None else np.asarray(preprocessed.to_original(up))
    query_input = ((row + 0.5) * height / fh - 0.5, (col + 0.5) * width / fw - 0.5)
    return AttentionMap(name, (row, col), query_input, weights, mean, up, original)
