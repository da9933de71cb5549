"""Per-image attributions for the malignant class (captum): saliency, integrated gradients,
occlusion and Grad-CAM, each a heat map at the model's input resolution (and, given the
``Preprocessed`` image, at the original mammogram's size)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from captum.attr import IntegratedGradients, LayerAttribution, LayerGradCam, Occlusion, Saliency
from torch import nn

from hct.errors import ConfigError

METHODS = ("saliency", "integrated_gradients", "occlusion", "gradcam")
MALIGNANT = 1


@dataclass
class Attribution:
    """A heat map explaining ``probability`` (softmax of class ``target``) for one image.

    ``heatmap`` is ``H x W`` at the model input; ``original`` is the same map at the original
    image's size (``None`` without a ``Preprocessed``).
    """

    method: str
    heatmap: np.ndarray
    probability: float
    target: int
    original: np.ndarray | None = None


def _batch(model: nn.Module, image) -> tuple[torch.Tensor, object | None]:
    """``(1, C, H, W)`` on the model's device from a tensor or a ``Preprocessed`` (``.tensor``)."""
    preprocessed = None if isinstance(image, torch.Tensor) else image
    tensor = image if preprocessed is None else preprocessed.tensor
    if tensor.dim() == 3:
        tensor = tensor[None]
    if tensor.dim() != 4 or tensor.shape[0] != 1:
        raise ConfigError(f"explain one image: expected (C, H, W) or (1, C, H, W), got {tuple(tensor.shape)}")
    param = next(model.parameters())
    return tensor.to(device=param.device, dtype=param.dtype), preprocessed


def malignancy_probability(model: nn.Module, x: torch.Tensor, target: int = MALIGNANT) -> float:
    """Softmax probability of class ``target`` for a ``(1, C, H, W)`` input."""
    with torch.no_grad():
        return float(torch.softmax(model(x), dim=1)[0, target])


def _finish(method: str, model: nn.Module, x: torch.Tensor, attribution: torch.Tensor, preprocessed,
            target: int) -> Attribution:
    heatmap = attribution.detach().float().sum(dim=1)[0].cpu().numpy()
    original = None if preprocessed is None else np.asarray(preprocessed.to_original(heatmap))
    return Attribution(method, heatmap, malignancy_probability(model, x, target), target, original)


class _Eval:
    """Eval mode for the duration; restores each module's training flag."""

    def __init__(self, model: nn.Module) -> None:
        self.model = model

    def __enter__(self) -> None:
        self.flags = [(m, m.training) for m in self.model.modules()]
        self.model.eval()

    def __exit__(self, *exc) -> None:
        for module, flag in self.flags:
            module.training = flag


def saliency(model: nn.Module, image, target: int = MALIGNANT) -> Attribution:
    """|d logit_target / d input| (Simonyan et al.)."""
    x, pre = _batch(model, image)
    with _Eval(model):
        attr = Saliency(model).attribute(x.detach().clone().requires_grad_(True), target=target, abs=True)
        return _finish("saliency", model, x, attr, pre, target)


def integrated_gradients(model: nn.Module, image, target: int = MALIGNANT, steps: int = 32,
                         baseline: float = 0.0, internal_batch_size: int | None = None) -> Attribution:
    """Integrated gradients (Sundararajan et al.) from a constant ``baseline`` image in ``steps`` steps.

    ``internal_batch_size`` bounds memory (default: 1 on CPU, 8 on CUDA).
    """
    x, pre = _batch(model, image)
    if internal_batch_size is None:
        internal_batch_size = 8 if x.is_cuda else 1
    with _Eval(model):
        attr = IntegratedGradients(model).attribute(
            x, baselines=baseline, target=target, n_steps=steps, internal_batch_size=internal_batch_size)
        return _finish("integrated_gradients", model, x, attr, pre, target)


def occlusion_window(height: int, width: int, fraction: float = 1 / 8) -> tuple[tuple[int, int], tuple[int, int]]:
    """Occlusion window (``fraction`` of each side) and stride (half the window) for an image size."""
    window = (max(1, round(height * fraction)), max(1, round(width * fraction)))
    return window, (max(1, window[0] // 2), max(1, window[1] // 2))


def occlusion(model: nn.Module, image, target: int = MALIGNANT, fraction: float = 1 / 8,
              baseline: float = 0.0, perturbations_per_eval: int | None = None) -> Attribution:
    """Drop in the target logit when a window (``fraction`` of each side, stride half of it) is set to ``baseline``."""
    x, pre = _batch(model, image)
    window, stride = occlusion_window(x.shape[-2], x.shape[-1], fraction)
    if perturbations_per_eval is None:
        perturbations_per_eval = 8 if x.is_cuda else 1
    with _Eval(model), torch.no_grad():
        attr = Occlusion(model).attribute(
            x, sliding_window_shapes=(x.shape[1], *window), strides=(x.shape[1], *stride),
            baselines=baseline, target=target, perturbations_per_eval=perturbations_per_eval)
        return _finish("occlusion", model, x, attr, pre, target)


def gradcam(model: nn.Module, image, target: int = MALIGNANT, layer: nn.Module | None = None) -> Attribution:
    """Grad-CAM (Selvaraju et al.) on ``layer`` (default: the last stage), ReLU'd and upsampled bilinearly."""
    x, pre = _batch(model, image)
    if layer is None:
        stages = getattr(model, "stages", None)
        if stages is None:
            raise ConfigError(f"{type(model).__name__} has no .stages; pass the layer for Grad-CAM")
        layer = stages[-1]
    with _Eval(model):
        attr = LayerGradCam(model, layer).attribute(x, target=target, relu_attributions=True)
        attr = LayerAttribution.interpolate(attr, tuple(x.shape[-2:]), interpolate_mode="bilinear")
        return _finish("gradcam", model, x, attr, pre, target)


def attribute(model: nn.Module, image, method: str, target: int = MALIGNANT, **options) -> Attribution:
    """Run attribution ``method`` (one of :data:`METHODS`) on one image."""
    functions = {"saliency": saliency, "integrated_gradients": integrated_gradients,
                 "occlusion": occlusion, "gradcam": gradcam}
    if method not in functions:
        raise ConfigError(f"unknown attribution method {method!r}; choose one of {METHODS}")
    return functions[method](model, image, target=target, **options)
