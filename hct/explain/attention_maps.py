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
from hct.explain.inputs import ImageInput, as_batch, eval_mode

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


def layer_input(model: nn.Module, layer: str | nn.Module | None, image: ImageInput) -> torch.Tensor:
    """The feature map an attention ``layer`` (a name of ``model.attention_layers()``, default the
    first, or the module) receives from ``model.forward_features`` on ``image``, in eval mode, no grad.

    It is all a query needs besides the layer: keep it to answer many queries of one image quickly.
    """
    module = layer if isinstance(layer, nn.Module) else attention_layer(model, layer)[1]
    x, _ = as_batch(model, image)
    captured = {}

    def hook(_module, args):
        captured["x"] = args[0].detach()
        raise _Captured

    handle = module.register_forward_pre_hook(hook)
    try:
        with torch.no_grad(), eval_mode(model):
            getattr(model, "forward_features", model)(x)
    except _Captured:
        pass
    finally:
        handle.remove()
    if "x" not in captured:
        raise ConfigError("the attention layer was not reached by the model's forward pass")
    return captured["x"]


def attention_layer(model: nn.Module, layer: str | None = None) -> tuple[str, nn.Module]:
    """``(name, module)`` of one of ``model.attention_layers()`` (default: the first, the finest map)."""
    layers = model.attention_layers() if hasattr(model, "attention_layers") else {}
    if not layers:
        raise ConfigError(
            f"{getattr(model, 'name', type(model).__name__)} has no attention layers; "
            "attention maps need an HCT model (choose another method for CNNs)"
        )
    name = layer or next(iter(layers))
    if name not in layers:
        raise ConfigError(f"unknown attention layer {name!r}; choose one of {list(layers)}")
    return name, layers[name]


def _feature_position(
    query: tuple[float, float], coords: str, size: tuple[int, int], feature_size: tuple[int, int], name: str
) -> tuple[int, int]:
    (height, width), (fh, fw) = size, feature_size
    if coords == "input":
        if not (0 <= query[0] < height and 0 <= query[1] < width):
            raise ConfigError(f"query {query} is outside the {height}x{width} input image")
        return min(int(query[0] * fh / height), fh - 1), min(int(query[1] * fw / width), fw - 1)
    row, col = int(query[0]), int(query[1])
    if not (0 <= row < fh and 0 <= col < fw):
        raise ConfigError(f"query {(row, col)} is outside layer {name}'s {fh}x{fw} feature map")
    return row, col


def attention_map(
    model: nn.Module,
    image: ImageInput,
    query: tuple[float, float],
    layer: str | None = None,
    coords: str = "input",
    features: torch.Tensor | None = None,
) -> AttentionMap:
    """Attention weights of one query position of an HCT attention layer over all positions.

    ``image``: a ``(C, H, W)`` / ``(1, C, H, W)`` tensor or a ``Preprocessed``. ``query`` is
    ``(row, col)`` in input pixels (``coords="input"``) or in the layer's feature map
    (``"feature"``). ``layer`` names one of ``model.attention_layers()`` (default: the first, the
    finest feature map). ``features``: the layer's input for this image (:func:`layer_input`), when
    the caller keeps it; a new query then costs only the attention row, not a forward pass.
    """
    if coords not in COORDS:
        raise ConfigError(f"coords must be one of {COORDS}, got {coords!r}")
    name, module = attention_layer(model, layer)
    x, preprocessed = as_batch(model, image)
    height, width = x.shape[-2:]
    with eval_mode(model), torch.no_grad():
        if features is None:
            features = layer_input(model, module, x)
        fh, fw = features.shape[-2:]
        row, col = _feature_position(query, coords, (height, width), (fh, fw), name)
        weights = module.attention_weights(features, (row, col))[0].float().cpu().numpy()
    mean = weights.mean(axis=0)
    up = _as_distribution(upsample(mean, (height, width)))
    original = None if preprocessed is None else np.asarray(preprocessed.to_original(up))
    query_input = ((row + 0.5) * height / fh - 0.5, (col + 0.5) * width / fw - 0.5)
    return AttentionMap(name, (row, col), query_input, weights, mean, up, original)


def attention_received(
    model: nn.Module, image: ImageInput, layer: str | None = None, mask: np.ndarray | None = None, max_queries: int = 64
) -> np.ndarray:
    """How much attention each position receives: the mean over query positions of the heads-mean
    attention row, upsampled to the model input ``(H, W)`` and summing to one.

    Queries lie on a regular grid of at most ``max_queries`` feature-map positions, inside ``mask``
    (the breast at input resolution) when given. Needs no finding, so it can be scored against one.
    """
    name, module = attention_layer(model, layer)
    x, _ = as_batch(model, image)
    height, width = x.shape[-2:]
    with eval_mode(model), torch.no_grad():
        features = layer_input(model, module, x)
        fh, fw = features.shape[-2:]
        inside = np.ones((fh, fw), bool) if mask is None else upsample(np.asarray(mask, np.float32), (fh, fw)) > 0.5
        cells = np.argwhere(inside) if inside.any() else np.argwhere(np.ones((fh, fw), bool))
        cells = cells[np.linspace(0, len(cells) - 1, min(max_queries, len(cells))).round().astype(int)]
        total = sum(module.attention_weights(features, (int(r), int(c)))[0].float().mean(0) for r, c in cells)
    return _as_distribution(upsample((total / len(cells)).cpu().numpy(), (height, width)))


def _as_distribution(heatmap: np.ndarray) -> np.ndarray:
    """Negative interpolation overshoot clipped, then scaled to sum to one."""
    heatmap = np.clip(heatmap, 0, None)
    return heatmap / heatmap.sum()
