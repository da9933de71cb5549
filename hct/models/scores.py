"""What a model's prediction is, and how its inputs are made, whatever the model: one owner for
predict, explain, localize, the attributions and the app.

The paper's classifiers give two logits (softmax: not malignant, malignant). NYU's GMIC gives
independent sigmoid probabilities (benign, malignant) from three branches; its prediction is
``y_fusion``. :func:`score_function` is what attributions differentiate (the logits, or ``y_fusion``)
and :func:`probabilities` turns its output into per-class probabilities.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import nn

from hct.models.nyu_gmic import GmicOutput, NyuGmic, NyuGmicEnsemble


def gives_probabilities(model: nn.Module) -> bool:
    """True when the model's scores are already probabilities per class (NYU's GMIC: benign, malignant)."""
    return isinstance(model, (NyuGmic, NyuGmicEnsemble))


def scores_of(output: torch.Tensor | GmicOutput) -> torch.Tensor:
    """The ``(B, 2)`` scores in a forward pass's output: the logits, or GMIC's ``y_fusion``."""
    return output.y_fusion if isinstance(output, GmicOutput) else output


def score_function(model: nn.Module) -> Callable[[torch.Tensor], torch.Tensor]:
    """``x -> (B, 2)`` scores whose column ``target`` attributions explain (the model itself for a classifier)."""
    if gives_probabilities(model):
        return lambda x: model(x).y_fusion
    return model


def probabilities(model: nn.Module, scores: torch.Tensor) -> torch.Tensor:
    """``(B, 2)`` probabilities from :func:`score_function`'s output: softmax of logits, GMIC's as they are."""
    return scores.float() if gives_probabilities(model) else torch.softmax(scores.float(), dim=1)


def input_mode(model: nn.Module) -> str:
    """The preprocessing mode (``hct.data.preprocess``) the model's inputs are made in: its card's (or, at
    random initialisation, its architecture's: ``nyu_gmic`` for NYU's GMIC), else ``canonical``."""
    return (getattr(model, "pretrained_cfg", {}).get("preprocessing") or {}).get("mode", "canonical")
