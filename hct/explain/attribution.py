"""Per-image attributions for the malignant class (captum; NYU's GMIC: its malignant ``y_fusion``):
saliency, integrated gradients, SmoothGrad, occlusion and Grad-CAM at any stage, each a heat map at the model's input resolution
(and, given the ``Preprocessed`` image, at the original mammogram's size).

Keyword arguments keep captum's names (``n_steps``, ``baselines``, ``nt_samples``, ``stdevs``,
``sliding_window_shapes``, ``strides``, ``internal_batch_size``), so a captum user's call works.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import numpy as np
import torch
from captum.attr import IntegratedGradients, LayerAttribution, LayerGradCam, NoiseTunnel, Occlusion, Saliency
from torch import nn

from hct.errors import ConfigError
from hct.explain.inputs import ImageInput, as_batch, eval_mode
from hct.explain.options import METHODS
from hct.models.scores import probabilities, score_function, scores_of

MALIGNANT = 1
SMOOTHGRAD_NOISE = 0.15  # SmoothGrad's noise level: a share of the input's value range (Smilkov et al.)


@dataclass
class Attribution:
    """A heat map explaining ``probability`` (softmax of class ``target``) for one image.

    ``heatmap`` is ``H x W`` at the model input; ``original`` is the same map at the original
    image's size (``None`` without a ``Preprocessed``); ``layer`` names Grad-CAM's layer.
    """

    method: str
    heatmap: np.ndarray
    probability: float
    target: int
    original: np.ndarray | None = None
    layer: str = ""


def malignancy_probability(model: nn.Module, x: torch.Tensor, target: int = MALIGNANT) -> float:
    """Probability of class ``target`` for a ``(1, C, H, W)`` input (softmax of a classifier's logits;
    NYU GMIC's ``y_fusion``)."""
    with torch.no_grad(), eval_mode(model):
        return float(probabilities(model, score_function(model)(x))[0, target])


@contextmanager
def _logits_of(model: nn.Module, x: torch.Tensor) -> Iterator[dict]:
    """Keeps (under ``"logits"``) the model's output on exactly ``x`` when the method runs that pass
    itself (saliency, Grad-CAM, occlusion), so the probability needs no pass of its own."""
    kept = {}

    def hook(_module, args, output) -> None:
        if (
            "logits" not in kept
            and args
            and isinstance(args[0], torch.Tensor)
            and args[0].shape == x.shape
            and args[0].data_ptr() == x.data_ptr()
        ):
            kept["logits"] = scores_of(output).detach()

    handle = model.register_forward_hook(hook)
    try:
        yield kept
    finally:
        handle.remove()


def _finish(
    method: str,
    model: nn.Module,
    x: torch.Tensor,
    attribution: torch.Tensor,
    preprocessed,
    target: int,
    kept: dict,
    layer: str = "",
) -> Attribution:
    heatmap = attribution.detach().float().sum(dim=1)[0].cpu().numpy()
    original = None if preprocessed is None else np.asarray(preprocessed.to_original(heatmap))
    if "logits" in kept:
        probability = float(probabilities(model, kept["logits"])[0, target])
    else:
        probability = malignancy_probability(model, x, target)
    return Attribution(method, heatmap, probability, target, original, layer)


def saliency(model: nn.Module, image: ImageInput, target: int = MALIGNANT) -> Attribution:
    """|d logit_target / d input| (Simonyan et al.)."""
    x, pre = as_batch(model, image)
    x = x.detach().clone().requires_grad_(True)
    with eval_mode(model), _logits_of(model, x) as kept:
        attr = Saliency(score_function(model)).attribute(x, target=target, abs=True)
    return _finish("saliency", model, x.detach(), attr, pre, target, kept)


def smoothgrad(
    model: nn.Module,
    image: ImageInput,
    target: int = MALIGNANT,
    nt_samples: int = 8,
    stdevs: float | None = None,
    nt_samples_batch_size: int | None = None,
) -> Attribution:
    """SmoothGrad (Smilkov et al.): saliency averaged over ``nt_samples`` noisy copies of the input.

    ``stdevs`` is the noise's standard deviation; default :data:`SMOOTHGRAD_NOISE` of the input's range.
    """
    x, pre = as_batch(model, image)
    if stdevs is None:
        stdevs = SMOOTHGRAD_NOISE * float(x.max() - x.min())
    with eval_mode(model):
        attr = NoiseTunnel(Saliency(score_function(model))).attribute(
            x.detach().clone().requires_grad_(True),
            nt_type="smoothgrad",
            nt_samples=nt_samples,
            stdevs=stdevs,
            nt_samples_batch_size=nt_samples_batch_size or 1,
            target=target,
            abs=True,
        )
    return _finish("smoothgrad", model, x, attr, pre, target, {})


def integrated_gradients(
    model: nn.Module,
    image: ImageInput,
    target: int = MALIGNANT,
    n_steps: int = 32,
    baselines: float = 0.0,
    internal_batch_size: int | None = None,
) -> Attribution:
    """Integrated gradients (Sundararajan et al.) from a constant ``baselines`` image in ``n_steps`` steps.

    ``internal_batch_size`` bounds memory (default: 1 on CPU, 8 on CUDA).
    """
    x, pre = as_batch(model, image)
    if internal_batch_size is None:
        internal_batch_size = 8 if x.is_cuda else 1
    with eval_mode(model):
        attr = IntegratedGradients(score_function(model)).attribute(
            x, baselines=baselines, target=target, n_steps=n_steps, internal_batch_size=internal_batch_size
        )
    return _finish("integrated_gradients", model, x, attr, pre, target, {})


def occlusion_window(height: int, width: int, fraction: float = 1 / 8) -> tuple[tuple[int, int], tuple[int, int]]:
    """Occlusion window (``fraction`` of each side) and stride (half the window) for an image size."""
    window = (max(1, round(height * fraction)), max(1, round(width * fraction)))
    return window, (max(1, window[0] // 2), max(1, window[1] // 2))


def occlusion(
    model: nn.Module,
    image: ImageInput,
    target: int = MALIGNANT,
    sliding_window_shapes: tuple[int, int] | None = None,
    strides: tuple[int, int] | None = None,
    baselines: float = 0.0,
    perturbations_per_eval: int | None = None,
) -> Attribution:
    """Drop in the target logit when a window is set to ``baselines``.

    ``sliding_window_shapes`` and ``strides`` are ``(rows, cols)``; by default an eighth of each side
    and half of that (:func:`occlusion_window`).
    """
    x, pre = as_batch(model, image)
    window, stride = occlusion_window(x.shape[-2], x.shape[-1])
    window, stride = tuple(sliding_window_shapes or window)[-2:], tuple(strides or stride)[-2:]
    if perturbations_per_eval is None:
        perturbations_per_eval = 8 if x.is_cuda else 1
    with eval_mode(model), torch.no_grad(), _logits_of(model, x) as kept:
        attr = Occlusion(score_function(model)).attribute(
            x,
            sliding_window_shapes=(x.shape[1], *window),
            strides=(x.shape[1], *stride),
            baselines=baselines,
            target=target,
            perturbations_per_eval=perturbations_per_eval,
        )
    return _finish("occlusion", model, x, attr, pre, target, kept)


def gradcam_layers(model: nn.Module) -> dict[str, nn.Module]:
    """The layers Grad-CAM can explain, finest first: each stage (``stages.0`` .. ``stages.4``)."""
    stages = getattr(model, "stages", None)
    if stages is None:
        raise ConfigError(f"{type(model).__name__} has no .stages; pass Grad-CAM's layer as a module")
    return {f"stages.{i}": stage for i, stage in enumerate(stages)}


def gradcam(
    model: nn.Module, image: ImageInput, target: int = MALIGNANT, layer: str | nn.Module | None = None
) -> Attribution:
    """Grad-CAM (Selvaraju et al.) on ``layer``, ReLU'd and upsampled bilinearly.

    ``layer`` is a name of :func:`gradcam_layers` (default: the last stage; an earlier stage gives a
    finer map) or a module of the model.
    """
    x, pre = as_batch(model, image)
    if isinstance(layer, nn.Module):
        module, name = layer, type(layer).__name__
    else:
        layers = gradcam_layers(model)
        name = layer or list(layers)[-1]
        if name not in layers:
            raise ConfigError(f"unknown Grad-CAM layer {name!r}; choose one of {list(layers)}")
        module = layers[name]
    with eval_mode(model), _logits_of(model, x) as kept:
        attr = LayerGradCam(score_function(model), module).attribute(x, target=target, relu_attributions=True)
        attr = LayerAttribution.interpolate(attr, tuple(x.shape[-2:]), interpolate_mode="bilinear")
    return _finish("gradcam", model, x, attr, pre, target, kept, layer=name)


_FUNCTIONS = {
    "saliency": saliency,
    "integrated_gradients": integrated_gradients,
    "smoothgrad": smoothgrad,
    "occlusion": occlusion,
    "gradcam": gradcam,
}


def attribute(model: nn.Module, image: ImageInput, method: str, target: int = MALIGNANT, **options) -> Attribution:
    """Run attribution ``method`` (one of :data:`METHODS`) on one image; ``options`` go to its function."""
    if method not in _FUNCTIONS:
        raise ConfigError(f"unknown attribution method {method!r}; choose one of {METHODS}")
    return _FUNCTIONS[method](model, image, target=target, **options)
