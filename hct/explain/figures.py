"""Figures of ERFs and heat maps: plotly (app and HTML reports) and one matplotlib summary (PNG)."""

from __future__ import annotations

import base64
from collections.abc import Sequence

import numpy as np
import pandas as pd
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


def picture_figure(picture: np.ndarray, title: str = "", marker: tuple[float, float] | None = None,
                   click_grid: int | None = None, boxes: Sequence[tuple[float, float, float, float]] = (),
                   height: int = 600) -> go.Figure:
    """An RGB picture (``uint8`` ``(H, W, 3)``, e.g. :func:`hct.explain.overlays.overlay_picture`) sent
    as one PNG, zoomable; ``marker`` marks a ``(row, col)``; ``boxes`` ``(row0, col0, row1, col1)``
    are outlined (findings).

    ``click_grid`` adds invisible points every that many pixels, so a click on the picture selects a
    point (images cannot be selected in plotly) and its ``(y, x)`` is the clicked position.
    """
    from hct.explain.overlays import png_bytes

    rows, cols = picture.shape[:2]
    source = "data:image/png;base64," + base64.b64encode(png_bytes(picture)).decode()
    fig = go.Figure(go.Image(source=source, hoverinfo="skip"))
    if click_grid:
        grid_rows, grid_cols = np.mgrid[click_grid // 2:rows:click_grid, click_grid // 2:cols:click_grid]
        fig.add_trace(go.Scatter(x=grid_cols.ravel(), y=grid_rows.ravel(), mode="markers", name="click to query",
                                 marker=dict(size=max(4, min(click_grid, 24)), opacity=0), hoverinfo="x+y",
                                 showlegend=False))
    if marker is not None:
        fig.add_trace(go.Scatter(x=[marker[1]], y=[marker[0]], mode="markers", name="query", showlegend=False,
                                 marker=dict(symbol="x", size=12, color="white", line=dict(width=1, color="black"))))
    for row0, col0, row1, col1 in boxes:
        fig.add_shape(type="rect", x0=col0 - 0.5, x1=col1 - 0.5, y0=row0 - 0.5, y1=row1 - 0.5,
                      line=dict(color="#ffd400", width=2, dash="dash"))
    fig.update_xaxes(visible=False, range=[-0.5, cols - 0.5])
    fig.update_yaxes(visible=False, range=[rows - 0.5, -0.5], scaleanchor="x")
    fig.update_layout(title=title, height=height, margin=dict(l=0, r=0, t=30 if title else 0, b=0))
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


def localization_figure(summary: pd.DataFrame) -> MplFigure:
    """Energy inside the finding and pointing-game hit rate per method, one bar per model, with 95%
    bootstrap intervals; black ticks mark what a uniform map would score (the finding's area share)."""
    methods = list(dict.fromkeys(summary["method"]))
    models = list(dict.fromkeys(summary["model"]))
    width = 0.8 / max(len(models), 1)
    fig = MplFigure(figsize=(max(6.0, 1.6 * len(methods) * max(len(models), 1) ** 0.5), 6.5), layout="constrained")
    for row, (score, what) in enumerate((("energy", "energy inside the finding"), ("hit_rate", "pointing-game hit rate"))):
        ax = fig.add_subplot(2, 1, row + 1)
        low_key, high_key = ("energy_low", "energy_high") if score == "energy" else ("hit_low", "hit_high")
        for i, model in enumerate(models):
            part = summary[summary["model"] == model].set_index("method").reindex(methods)
            x = np.arange(len(methods)) + (i - (len(models) - 1) / 2) * width
            values = part[score].to_numpy(dtype=float)
            errors = np.abs(np.stack([values - part[low_key].to_numpy(dtype=float),
                                      part[high_key].to_numpy(dtype=float) - values]))
            spec = MODEL_SPECS.get(model)
            ax.bar(x, values, width, yerr=errors, capsize=2, label=model,
                   color=spec.colour if spec else PALETTE[i % len(PALETTE)])
            if score == "energy":
                ax.hlines(part["area_share"].to_numpy(dtype=float), x - width / 2, x + width / 2, colors="black", lw=1)
        ax.set_xticks(np.arange(len(methods)), [m.replace("_", " ") for m in methods], fontsize=8)
        ax.set_ylim(0, 1)
        ax.set_ylabel(what, fontsize=8)
        if row == 0:
            ax.legend(fontsize=7, ncols=min(len(models), 3))
    fig.suptitle("Where explanations point (95% bootstrap intervals over images; black: a uniform map)", fontsize=9)
    return fig
