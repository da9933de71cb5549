"""Figures of ERFs and heat maps: plotly (app and HTML reports) and one matplotlib summary (PNG)."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import plotly.graph_objects as go
from matplotlib.figure import Figure as MplFigure
from plotly.subplots import make_subplots

from hct.explain.erf import ERFResult, curve_band
from hct.models import MODEL_SPECS

# Paper colours: GMIC blue, Def-GMIC green, HCT orange; more models cycle the rest.
PALETTE = ("#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2")


def _colour(result: ERFResult, index: int) -> str:
    spec = MODEL_SPECS.get(result.model_name)
    return spec.colour if spec else PALETTE[index % len(PALETTE)]


def _label(result: ERFResult) -> str:
    return f"{result.model_name} ({result.subset}, N={result.n})"


def _rgba(hex_colour: str, alpha: float) -> str:
    r, g, b = (int(hex_colour[i:i + 2], 16) for i in (1, 3, 5))
    return f"rgba({r},{g},{b},{alpha})"


def erf_heatmaps(results: Sequence[ERFResult], sqrt: bool = False) -> go.Figure:
    """ERF maps side by side (``sqrt``: square root of the absolute map, as the paper's Sqrt ERF)."""
    fig = make_subplots(rows=1, cols=len(results), subplot_titles=[_label(r) for r in results],
                        horizontal_spacing=0.03)
    for i, result in enumerate(results, start=1):
        z = result.sqrt_map if sqrt else result.map
        fig.add_trace(go.Heatmap(z=z, colorscale="Viridis" if sqrt else "RdBu_r", showscale=i == len(results),
                                 zmid=None if sqrt else 0.0, name=result.model_name), row=1, col=i)
        fig.update_yaxes(autorange="reversed", scaleanchor=f"x{i if i > 1 else ''}", row=1, col=i)
    fig.update_layout(title=("Sqrt ERF" if sqrt else "ERF") + " (input pixels)", height=450)
    return fig


def erf_curves(results: Sequence[ERFResult], axis: str = "columns", sqrt: bool = False,
               band: float | None = 0.95, n_boot: int = 500) -> go.Figure:
    """Aggregate curves of several ERFs overlaid, each with a bootstrap band over its images.

    ``axis="columns"``: the curve over columns (map summed over rows, the paper's "across rows");
    ``"rows"``: the curve over rows. ``band``: the band's level, ``None`` for no band.
    """
    fig = go.Figure()
    for i, result in enumerate(results):
        curve = result.curve_over_columns if axis == "columns" else result.curve_over_rows
        if sqrt:
            curve = np.sqrt(np.abs(curve))
        x = np.arange(curve.size)
        colour = _colour(result, i)
        if band is not None and result.n > 1:
            low, high = curve_band(result, axis, band, n_boot=n_boot, sqrt=sqrt)
            fig.add_trace(go.Scatter(x=np.concatenate([x, x[::-1]]), y=np.concatenate([high, low[::-1]]),
                                     fill="toself", fillcolor=_rgba(colour, 0.2), line=dict(width=0),
                                     hoverinfo="skip", showlegend=False, name=f"{_label(result)} band"))
        fig.add_trace(go.Scatter(x=x, y=curve, mode="lines", line=dict(color=colour), name=_label(result)))
    what = "column (summed over rows)" if axis == "columns" else "row (summed over columns)"
    fig.update_layout(title=f"{'Sqrt ' if sqrt else ''}ERF per {what}", xaxis_title=f"input {axis[:-1]}",
                      yaxis_title="sqrt |ERF|" if sqrt else "ERF", height=380)
    return fig


def heatmap_overlay(image: np.ndarray, heatmap: np.ndarray, opacity: float = 0.5, colorscale: str = "Jet",
                    title: str = "", marker: tuple[float, float] | None = None,
                    click_grid: int | None = None) -> go.Figure:
    """``heatmap`` over a grey ``image`` (same size) at ``opacity``; ``marker`` marks a (row, col).

    ``click_grid`` adds invisible points every that many pixels, so a click on the image selects a
    point (heat maps themselves cannot be selected in plotly) and its (y, x) is the clicked position.
    """
    image = np.asarray(image, dtype=np.float32)
    heatmap = np.asarray(heatmap, dtype=np.float32)
    if image.shape != heatmap.shape:
        raise ValueError(f"image {image.shape} and heat map {heatmap.shape} differ in size; resize one first")
    fig = go.Figure(go.Heatmap(z=image, colorscale="gray", showscale=False, hoverinfo="skip"))
    # with a click grid, the heat map takes no hover, so a click lands on the nearest grid point
    fig.add_trace(go.Heatmap(z=heatmap, colorscale=colorscale, opacity=opacity, name="heat map",
                             hoverinfo="skip" if click_grid else None))
    if click_grid:
        rows, cols = np.mgrid[click_grid // 2:image.shape[0]:click_grid, click_grid // 2:image.shape[1]:click_grid]
        fig.add_trace(go.Scatter(x=cols.ravel(), y=rows.ravel(), mode="markers", name="click to query",
                                 marker=dict(size=max(4, min(click_grid, 24)), opacity=0), hoverinfo="x+y",
                                 showlegend=False))
    if marker is not None:
        fig.add_trace(go.Scatter(x=[marker[1]], y=[marker[0]], mode="markers", name="query",
                                 marker=dict(symbol="x", size=12, color="white")))
    fig.update_yaxes(autorange="reversed", scaleanchor="x")
    fig.update_layout(title=title, height=600)
    return fig


def erf_summary_figure(results: Sequence[ERFResult]) -> MplFigure:
    """A matplotlib figure (no pyplot, any backend): maps and sqrt maps per model, then both curves."""
    n = len(results)
    fig = MplFigure(figsize=(3.2 * max(n, 2), 11), layout="constrained")
    grid = fig.add_gridspec(4, max(n, 1))
    for i, result in enumerate(results):
        for row, (z, cmap, name) in enumerate(((result.map, "RdBu_r", "ERF"), (result.sqrt_map, "viridis", "Sqrt ERF"))):
            ax = fig.add_subplot(grid[row, i])
            limit = float(np.abs(z).max()) or 1.0
            ax.imshow(z, cmap=cmap, vmin=-limit if row == 0 else 0, vmax=limit)
            ax.set_title(f"{name}: {_label(result)}", fontsize=8)
            ax.axis("off")
    for row, axis in ((2, "columns"), (3, "rows")):
        ax = fig.add_subplot(grid[row, :])
        for i, result in enumerate(results):
            curve = result.curve_over_columns if axis == "columns" else result.curve_over_rows
            ax.plot(curve, color=_colour(result, i), label=_label(result))
            if result.n > 1:
                low, high = curve_band(result, axis, n_boot=200)
                ax.fill_between(np.arange(curve.size), low, high, color=_colour(result, i), alpha=0.2)
        ax.set_title(f"ERF per {axis[:-1]} (summed over {'rows' if axis == 'columns' else 'columns'})", fontsize=9)
        ax.legend(fontsize=7)
    return fig
