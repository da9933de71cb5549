"""Heat maps a reader can read at any resolution: optional Gaussian smoothing (sigma in millimetres
where the pixel spacing is known, in pixels otherwise), robust scaling (the positive part, clipped
at a percentile, so a few extreme pixels cannot set the colour scale) and the level whose contour
encloses the top share of the attribution mass.

All of it is done once at model resolution; the result is then drawn in any geometry (display,
a zoomed region at full resolution, a download) and looks the same in each.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import ndimage

from hct.errors import ConfigError


@dataclass(frozen=True)
class Readability:
    """How a map is made readable: ``percentile`` clips the colour scale (99.5 by default);
    ``sigma`` smooths (0: not at all; millimetres where the pixel spacing is known, else pixels);
    ``top_mass`` is the share of the positive mass whose contour is drawn (``None``: no contour)."""

    percentile: float = 99.5
    sigma: float = 0.0
    top_mass: float | None = 0.5

    def __post_init__(self) -> None:
        if not 0 < self.percentile <= 100:
            raise ConfigError(f"percentile must lie in (0, 100], got {self.percentile}")
        if self.sigma < 0:
            raise ConfigError(f"sigma must be >= 0, got {self.sigma}")
        if self.top_mass is not None and not 0 < self.top_mass < 1:
            raise ConfigError(f"top_mass is a share of the mass in (0, 1), got {self.top_mass}")


@dataclass(frozen=True)
class ReadableMap:
    """A map scaled to [0, 1] at model resolution; ``region`` is where the top ``top_mass`` of the
    positive mass lies (:func:`top_mass_region`; its outline is the contour drawn; ``None`` without
    one); ``sigma_unit`` says how sigma was read."""

    values: np.ndarray
    region: np.ndarray | None
    sigma_unit: str


def sigma_unit(pixel_spacing: tuple[float, float] | None) -> str:
    """'mm' when the pixel spacing is known, else 'px'."""
    return "mm" if pixel_spacing else "px"


def smooth(heatmap: np.ndarray, sigma: float, pixel_spacing: tuple[float, float] | None = None) -> np.ndarray:
    """Gaussian smoothing; ``sigma`` in millimetres given the map's ``(row, col)`` pixel spacing in
    mm, in pixels without it."""
    if sigma <= 0:
        return np.asarray(heatmap, dtype=np.float32)
    pixels = (sigma / pixel_spacing[0], sigma / pixel_spacing[1]) if pixel_spacing else (sigma, sigma)
    return ndimage.gaussian_filter(np.asarray(heatmap, dtype=np.float32), pixels, mode="nearest")


def robust_scale(heatmap: np.ndarray, percentile: float = 99.5) -> np.ndarray:
    """The positive part divided by its ``percentile``-th percentile (over positive pixels), clipped to [0, 1]."""
    positive = np.clip(np.asarray(heatmap, dtype=np.float32), 0, None)
    values = positive[positive > 0]
    if values.size == 0:
        return positive
    top = float(np.percentile(values, percentile))
    return np.clip(positive / top, 0, 1) if top > 0 else positive


def top_mass_level(heatmap: np.ndarray, share: float) -> float:
    """The value ``t`` such that pixels ``>= t`` hold ``share`` of the positive mass (the smallest
    such region); 0 when there is no positive mass."""
    values = np.sort(np.clip(np.asarray(heatmap, dtype=np.float64), 0, None).ravel())[::-1]
    cumulative = np.cumsum(values)
    if cumulative.size == 0 or cumulative[-1] <= 0:
        return 0.0
    index = int(np.searchsorted(cumulative, share * cumulative[-1]))
    return float(values[min(index, values.size - 1)])


def top_mass_region(heatmap: np.ndarray, share: float, min_area: float = 0.001, work_side: int = 512) -> np.ndarray:
    """Where ``share`` of the positive mass lies (the smallest such set of pixels), made outlinable:
    gaps of a few pixels closed, holes filled, and parts smaller than ``min_area`` of the image
    dropped, so a speckled map (saliency) gets an outline a reader can follow rather than thousands
    of dots. Found on the map mean-pooled to at most ``work_side`` pixels a side (mass kept), then
    brought back to the map's size."""
    heatmap = np.asarray(heatmap, dtype=np.float32)
    factor = max(1, int(np.ceil(max(heatmap.shape) / work_side)))
    rows, cols = heatmap.shape[0] // factor * factor, heatmap.shape[1] // factor * factor
    pooled = heatmap[:rows, :cols].reshape(rows // factor, factor, cols // factor, factor).mean(axis=(1, 3))
    region = pooled >= top_mass_level(pooled, share)
    region = ndimage.binary_fill_holes(ndimage.binary_closing(region, np.ones((3, 3), bool), border_value=0))
    labels, count = ndimage.label(region)
    if count:
        sizes = np.bincount(labels.ravel())
        keep = sizes >= min_area * region.size
        keep[0] = False
        region = keep[labels]
    full = np.zeros(heatmap.shape, bool)
    full[:rows, :cols] = region.repeat(factor, axis=0).repeat(factor, axis=1)
    return full


def model_pixel_spacing(
    pixel_spacing: tuple[float, float] | None, scale: tuple[float, float]
) -> tuple[float, float] | None:
    """Millimetres per model pixel, from the original's spacing and the model pixels per original pixel."""
    if not pixel_spacing:
        return None
    return pixel_spacing[0] / scale[0], pixel_spacing[1] / scale[1]


def readable(
    heatmap: np.ndarray, options: Readability = Readability(), pixel_spacing: tuple[float, float] | None = None
) -> ReadableMap:
    """``heatmap`` smoothed, robustly scaled to [0, 1], with its top-mass contour level.

    ``pixel_spacing`` is the map's own (mm per pixel of ``heatmap``; see :func:`model_pixel_spacing`).
    """
    smoothed = smooth(heatmap, options.sigma, pixel_spacing)
    region = None
    if options.top_mass is not None and (smoothed > 0).any():
        region = top_mass_region(smoothed, options.top_mass)
    return ReadableMap(robust_scale(smoothed, options.percentile), region, sigma_unit(pixel_spacing))
