"""Numbers that tell a rigid, Gaussian ERF (a CNN's) from a dynamic one (HCT's), paper Sec. 4."""

from __future__ import annotations

import warnings

import numpy as np
from scipy.optimize import OptimizeWarning, curve_fit

from hct.errors import ConfigError
from hct.explain.erf.compute import ERFResult

AREA_SHARES = (0.2, 0.3, 0.5, 0.99)


def area_shares(erf_map: np.ndarray, shares: tuple[float, ...] = AREA_SHARES) -> dict[float, int]:
    """For each share ``p``: the fewest pixels holding ``p`` of the total ``|ERF|`` (largest first)."""
    values = np.sort(np.abs(np.asarray(erf_map, dtype=np.float64)).ravel())[::-1]
    total = values.sum()
    if total <= 0:
        return {p: 0 for p in shares}
    cumulative = np.cumsum(values) / total
    return {p: int(min(np.searchsorted(cumulative, p - 1e-12) + 1, values.size)) for p in shares}


def _gaussian(x: np.ndarray, amplitude: float, mu: float, sigma: float) -> np.ndarray:
    return amplitude * np.exp(-0.5 * ((x - mu) / sigma) ** 2)


def gaussian_fit_r2(curve: np.ndarray) -> float:
    """R^2 of a least-squares Gaussian ``a exp(-(x - mu)^2 / 2 sigma^2)`` fit to ``|curve|`` (NaN if it fails)."""
    y = np.abs(np.asarray(curve, dtype=np.float64))
    x = np.arange(y.size, dtype=np.float64)
    total = y.sum()
    ss_tot = ((y - y.mean()) ** 2).sum()
    if total <= 0 or ss_tot <= 0:
        return float("nan")
    mu = (x * y).sum() / total
    sigma = max(np.sqrt(((x - mu) ** 2 * y).sum() / total), 0.5)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", OptimizeWarning)
            params, _ = curve_fit(
                _gaussian,
                x,
                y,
                p0=(y.max(), mu, sigma),
                maxfev=5000,
                bounds=([0, -y.size, 1e-3], [np.inf, 2 * y.size, 10 * y.size]),
            )
    except (RuntimeError, ValueError):
        return float("nan")
    ss_res = ((y - _gaussian(x, *params)) ** 2).sum()
    return float(1 - ss_res / ss_tot)


def _breast_share(weights: np.ndarray, mask: np.ndarray | None, image_shares: np.ndarray | None) -> float | None:
    """Each image's share of its ``|ERF|`` on its own breast, averaged; else the mean map's share on ``mask``."""
    if mask is None and image_shares is not None and np.isfinite(image_shares).any():
        return float(np.nanmean(image_shares))
    if mask is None:
        return None
    mask = np.asarray(mask, dtype=np.float64)
    if mask.shape != weights.shape:
        raise ConfigError(
            f"mask shape {mask.shape} differs from the ERF's {weights.shape}; give an (H, W) mask at model resolution"
        )
    return float((weights * mask).sum() / weights.sum())


def erf_metrics(
    erf: ERFResult | np.ndarray, mask: np.ndarray | None = None, centre: tuple[float, float] | None = None
) -> dict[str, float]:
    """ERF shape metrics; all weights are ``|ERF|``.

    ``area_share_P``: share of the image area holding P% of the total contribution (pixels sorted
    by ``|ERF|``, largest first; ``pixels_P`` the count). ``centroid_*`` and ``offset_*``: the
    centroid and its offset from ``centre`` (default the ERFResult's ``input_centre``, or the
    image centre for a bare map), in pixels and as a fraction of the image height/width.
    ``spread_rows``/``spread_cols``: standard deviation (pixels) along rows (vertical) and columns.
    ``gaussian_r2_over_rows``/``_over_columns``: R^2 of a Gaussian fit to each aggregate curve.
    ``breast_share``: the share of ``|ERF|`` on the breast. For an ERFResult, each image's share on
    its own breast mask, averaged over images (its ``image_breast_shares``); given an ``(H, W)``
    ``mask`` (or a bare map with one), the share of the map's mass inside it.
    """
    image_shares = None
    if isinstance(erf, ERFResult):
        erf_map, image_shares = erf.map, erf.image_breast_shares
        centre = erf.input_centre if centre is None else centre
    else:
        erf_map = np.asarray(erf)
    if erf_map.ndim != 2:
        raise ConfigError(f"an ERF map must be 2-D (H, W), got shape {erf_map.shape}")
    height, width = erf_map.shape
    if centre is None:
        centre = ((height - 1) / 2, (width - 1) / 2)
    weights = np.abs(erf_map.astype(np.float64))
    total = weights.sum()
    if total <= 0:
        raise ConfigError("the ERF map is zero everywhere: no input pixel influences the chosen output")

    metrics: dict[str, float] = {}
    for share, pixels in area_shares(weights).items():
        key = f"{round(share * 100)}"
        metrics[f"pixels_{key}"] = pixels
        metrics[f"area_share_{key}"] = pixels / weights.size
    rows, cols = np.arange(height), np.arange(width)
    row_mass, col_mass = weights.sum(axis=1), weights.sum(axis=0)
    centroid_row = float((rows * row_mass).sum() / total)
    centroid_col = float((cols * col_mass).sum() / total)
    metrics.update(
        centroid_row=centroid_row,
        centroid_col=centroid_col,
        centre_row=float(centre[0]),
        centre_col=float(centre[1]),
        offset_row=centroid_row - centre[0],
        offset_col=centroid_col - centre[1],
        offset_row_frac=(centroid_row - centre[0]) / height,
        offset_col_frac=(centroid_col - centre[1]) / width,
        offset=float(np.hypot(centroid_row - centre[0], centroid_col - centre[1])),
        spread_rows=float(np.sqrt(((rows - centroid_row) ** 2 * row_mass).sum() / total)),
        spread_cols=float(np.sqrt(((cols - centroid_col) ** 2 * col_mass).sum() / total)),
        gaussian_r2_over_rows=gaussian_fit_r2(erf_map.sum(axis=1)),
        gaussian_r2_over_columns=gaussian_fit_r2(erf_map.sum(axis=0)),
    )
    metrics["offset_frac"] = metrics["offset"] / float(np.hypot(height, width))
    share = _breast_share(weights, mask, image_shares)
    if share is not None:
        metrics["breast_share"] = share
    return metrics
