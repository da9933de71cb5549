"""NYU GMIC's own explanation of one image, their four-panel figure's content: benign and malignant
probabilities of the three branches, the two saliency maps, the K crops' places and the crops with
their attention weights (``hct.models.nyu_gmic``)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from hct.explain.attention_maps import upsample
from hct.explain.inputs import ImageInput, as_batch, eval_mode

CLASSES = ("benign", "malignant")


@dataclass(frozen=True)
class GmicReading:
    """Probabilities ``(2,)`` (benign, malignant) of the global, local and fusion branches; the saliency
    maps ``(2, h, w)`` and bilinearly at model resolution ``(2, H, W)`` (as their visualisation resizes
    them); the crops' boxes ``(row0, col0, row1, col1)`` in model pixels; the crops and their attention."""

    y_global: np.ndarray
    y_local: np.ndarray
    y_fusion: np.ndarray
    saliency: np.ndarray
    saliency_upsampled: np.ndarray
    crop_boxes: tuple[tuple[int, int, int, int], ...]
    crops: np.ndarray
    attention: np.ndarray


def read_gmic(model: torch.nn.Module, image: ImageInput) -> GmicReading:
    """Run NYU's GMIC (or their ensemble) on one image, in eval mode, without gradients."""
    x, _ = as_batch(model, image)
    with torch.no_grad(), eval_mode(model):
        out = model(x)
    saliency = out.saliency[0].float().cpu().numpy()
    size = tuple(x.shape[-2:])
    crop_h, crop_w = out.crops.shape[-2:]
    boxes = tuple((int(r), int(c), int(r) + crop_h, int(c) + crop_w) for r, c in out.crop_positions[0].tolist())
    return GmicReading(
        *(getattr(out, name)[0].float().cpu().numpy() for name in ("y_global", "y_local", "y_fusion")),
        saliency=saliency,
        saliency_upsampled=np.stack([upsample(m, size) for m in saliency]),
        crop_boxes=boxes,
        crops=out.crops[0].float().cpu().numpy(),
        attention=out.attention[0].float().cpu().numpy(),
    )
