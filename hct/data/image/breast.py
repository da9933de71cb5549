"""Where the breast is in a mammogram: Otsu foreground, the breast mask, and the side it lies on.

A leaf module (numpy and scipy only), used by reading (laterality from the image) and by
preprocessing (orientation, cropping, clearing what lies outside the breast).
"""

from __future__ import annotations

import numpy as np
from scipy import ndimage


def otsu_threshold(values: np.ndarray, bins: int = 256) -> float:
    """Otsu's threshold: the grey level that maximises the between-class variance."""
    values = np.asarray(values, dtype=np.float64).ravel()
    lo, hi = float(values.min()), float(values.max())
    if hi <= lo:
        return lo
    hist, edges = np.histogram(values, bins=bins, range=(lo, hi))
    centres = (edges[:-1] + edges[1:]) / 2
    weight0 = np.cumsum(hist)
    weight1 = weight0[-1] - weight0
    sum0 = np.cumsum(hist * centres)
    mean0 = sum0 / np.maximum(weight0, 1)
    mean1 = (sum0[-1] - sum0) / np.maximum(weight1, 1)
    between = weight0 * weight1 * (mean0 - mean1) ** 2
    return float(edges[int(np.argmax(between[:-1])) + 1])


def breast_mask(pixels: np.ndarray, work_side: int = 512) -> np.ndarray:
    """Boolean breast mask: foreground, largest connected component, holes filled.

    The foreground threshold lies halfway between the background level (the 2nd percentile) and
    Otsu's threshold: Otsu alone cuts off the fatty periphery near the skin line. Burned-in
    labels, view markers and rulers are separate components and fall outside the mask. Computed
    on a strided copy at most ``work_side`` pixels a side, then scaled back (nearest).
    """
    rows, cols = pixels.shape
    step = max(1, int(np.ceil(max(rows, cols) / work_side)))
    small = np.asarray(pixels[::step, ::step], dtype=np.float32)
    background = float(np.percentile(small, 2))
    foreground = small > background + 0.5 * (otsu_threshold(small) - background)
    labels, count = ndimage.label(foreground)
    if count == 0:
        return np.zeros((rows, cols), dtype=bool)
    sizes = np.bincount(labels.ravel())[1:]
    largest = ndimage.binary_fill_holes(labels == int(np.argmax(sizes)) + 1)
    row_index = np.minimum(np.arange(rows) // step, largest.shape[0] - 1)
    col_index = np.minimum(np.arange(cols) // step, largest.shape[1] - 1)
    return largest[np.ix_(row_index, col_index)]


def breast_side(mask: np.ndarray) -> str:
    """``'L'`` when most of the breast lies in the image's left half, else ``'R'``.

    Under the display convention (a left breast's chest wall on the image's left), this is the
    breast's laterality.
    """
    half = mask.shape[1] // 2
    return "L" if mask[:, :half].sum() >= mask[:, half:].sum() else "R"


def infer_laterality(pixels: np.ndarray) -> str:
    """A mammogram's laterality from where its breast lies: ``'L'`` or ``'R'``."""
    return breast_side(breast_mask(pixels))
