"""ERF maps and curves made comparable and visible: normalisation, display scales, clipping, one
colour range across models, and area-averaged maps at display resolution.

Normalisation (per model): ``area`` divides by the total ``|ERF|`` so every curve and map holds unit
mass and shapes compare as in the paper's Tab. 1 (the default for the non-negative reductions);
``peak`` divides by ``max |ERF|`` (the default for the signed mean, whose total cancels); ``none``
keeps the raw gradients. Display scales keep the sign and transform ``|x|``: ``linear``; ``sqrt``
(the paper's Sqrt ERF); ``log10`` = ``log10(1 + x)`` (RepLKNet's ERF plots) with ``x`` in units of
the uniform density (a map spread evenly over the image has ``x = 1`` everywhere), so the scale does
not depend on the normalisation's units; ``power_0.25`` (VMamba's ERF plots).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
import torch
import torch.nn.functional as F

from hct.errors import ConfigError
from hct.explain.options import NORMALISATIONS, SCALES

if TYPE_CHECKING:
    from hct.explain.erf.compute import ERFResult

DISPLAY_LONG_SIDE = 1000  # pixels on the long side of what is sent to the browser (maps and pictures)


def default_normalisation(reduction: str) -> str:
    """``peak`` for the signed ``mean`` (its total cancels), ``area`` for the non-negative reductions."""
    return "peak" if reduction == "mean" else "area"


def normaliser(values: np.ndarray, how: str) -> float:
    """What ``values`` are divided by under normalisation ``how`` (1 when that would be 0)."""
    if how not in NORMALISATIONS:
        raise ConfigError(f"unknown normalisation {how!r}; choose one of {NORMALISATIONS}")
    magnitude = np.abs(np.asarray(values, dtype=np.float64))
    factor = {"area": magnitude.sum, "peak": magnitude.max, "none": lambda: 1.0}[how]()
    return float(factor) if factor > 0 else 1.0


def scaled(values: np.ndarray, scale: str, pixels: int = 1) -> np.ndarray:
    """``values`` on display ``scale``, sign kept; ``pixels`` is the map's full-resolution pixel
    count, the unit of ``log10`` (``x * pixels`` is ``x`` in units of the uniform density of a unit-area map)."""
    magnitude = np.abs(values)
    if scale == "linear":
        shown = magnitude
    elif scale == "sqrt":
        shown = np.sqrt(magnitude)
    elif scale == "log10":
        shown = np.log10(1 + magnitude * pixels)
    elif scale == "power_0.25":
        shown = magnitude**0.25
    else:
        raise ConfigError(f"unknown display scale {scale!r}; choose one of {SCALES}")
    return np.sign(values) * shown


def area_downsample(array: np.ndarray, long_side: int = DISPLAY_LONG_SIDE) -> np.ndarray:
    """``array`` (``(H, W)`` or ``(N, H, W)``) area-averaged by the smallest integer factor that brings
    its long side to at most ``long_side`` pixels (unchanged when already that small)."""
    values = np.asarray(array, dtype=np.float32)
    factor = math.ceil(max(values.shape[-2:]) / long_side)
    if factor <= 1:
        return values
    tensor = torch.from_numpy(np.ascontiguousarray(values)).reshape(-1, 1, *values.shape[-2:])
    size = (math.ceil(values.shape[-2] / factor), math.ceil(values.shape[-1] / factor))
    return F.adaptive_avg_pool2d(tensor, size).reshape(*values.shape[:-2], *size).numpy()


@dataclass(frozen=True)
class MapView:
    """How ERF maps are shown. ``normalisation`` ``None`` takes each reduction's default; ``clip``
    is the percentile of ``|values|`` where the colour scale saturates (100: the maximum);
    ``shared`` gives every model one colour range; ``outline`` draws the mean breast mask's edge."""

    normalisation: str | None = None
    scale: str = "sqrt"
    clip: float = 100.0
    shared: bool = True
    outline: bool = True
    long_side: int = DISPLAY_LONG_SIDE

    def __post_init__(self) -> None:
        if self.normalisation is not None and self.normalisation not in NORMALISATIONS:
            raise ConfigError(f"unknown normalisation {self.normalisation!r}; choose one of {NORMALISATIONS}")
        if self.scale not in SCALES:
            raise ConfigError(f"unknown display scale {self.scale!r}; choose one of {SCALES}")
        if not 50 <= self.clip <= 100:
            raise ConfigError(f"clip is a percentile in [50, 100], got {self.clip}")
        if self.long_side < 16:
            raise ConfigError(f"long_side must be at least 16 pixels, got {self.long_side}")

    def normalisation_for(self, reduction: str) -> str:
        return self.normalisation or default_normalisation(reduction)


@dataclass
class DisplayMap:
    """One map ready to draw: ``z`` at display resolution (normalised, on the view's scale), its colour
    range, ``pitch`` (input pixels per display pixel, rows and columns) and the mean breast mask."""

    z: np.ndarray
    zmin: float
    zmax: float
    pitch: tuple[float, float]
    mask: np.ndarray | None
    signed: bool


def colour_limit(arrays: Sequence[np.ndarray], clip: float) -> float:
    """The ``clip`` percentile of ``|values|`` over all ``arrays`` (1 when that is 0)."""
    values = np.concatenate([np.abs(a).ravel() for a in arrays])
    limit = float(np.percentile(values, clip)) if clip < 100 else float(values.max())
    return limit if limit > 0 else 1.0


def display_maps(results: Sequence[ERFResult], view: MapView) -> list[DisplayMap]:
    """Each result's map as ``view`` says: area-averaged to ``view.long_side``, normalised, scaled,
    with one colour range over all of them when ``view.shared``."""
    shown = [
        scaled(
            r.preview(view.long_side) / r.normaliser(view.normalisation_for(r.reduction)),
            view.scale,
            r.shape[0] * r.shape[1],
        )
        for r in results
    ]
    shared = colour_limit(shown, view.clip) if view.shared else None
    out = []
    for z, result in zip(shown, results):
        limit = shared if shared is not None else colour_limit([z], view.clip)
        signed = result.reduction == "mean"
        pitch = (result.shape[0] / z.shape[0], result.shape[1] / z.shape[1])
        mask = result.preview_mask(view.long_side) if view.outline else None
        out.append(DisplayMap(z, -limit if signed else 0.0, limit, pitch, mask, signed))
    return out
