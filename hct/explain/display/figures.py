"""Figures of ERFs and heat maps: plotly (app and HTML reports) and matplotlib (PNG), drawn from the
same normalised curves and display maps (:mod:`hct.explain.erf.maps`)."""

from __future__ import annotations

import base64
import math
from collections.abc import Sequence

import matplotlib
import numpy as np
import pandas as pd
import plotly.graph_objects as go
from matplotlib.figure import Figure as MplFigure
from plotly.subplots import make_subplots

from hct.explain.display.overlays import png_bytes
from hct.explain.erf.compute import ERFResult, curve_band
from hct.explain.erf.maps import (
    DisplayMap,
    MapView,
    area_downsample,
    default_normalisation,
    display_maps,
    normaliser,
    scaled,
)
from hct.models.ref import ModelRef

# Paper colours: GMIC blue, Def-GMIC green, HCT orange; more models cycle the rest.
PALETTE = ("#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2")
# The paper's names of the aggregate curves: "across rows" sums over rows (one value per column).
AXES = {"columns": "across rows", "rows": "across columns"}


def colour(result: ERFResult, index: int) -> str:
    """The model's paper colour (its :class:`~hct.models.ref.ModelRef`'s), else the palette's ``index``th."""
    return result.model.colour or PALETTE[index % len(PALETTE)]


def _label(result: ERFResult) -> str:
    return f"{result.model_name} ({result.subset}, N={result.n})"


def _rgba(hex_colour: str, alpha: float) -> str:
    r, g, b = (int(hex_colour[i : i + 2], 16) for i in (1, 3, 5))
    return f"rgba({r},{g},{b},{alpha})"


def normalised_curve(result: ERFResult, axis: str, normalisation: str | None = None) -> tuple[np.ndarray, float]:
    """The curve over ``axis`` divided by its normaliser (``None``: the reduction's default), and that normaliser."""
    curve = result.curve_over_columns if axis == "columns" else result.curve_over_rows
    factor = normaliser(curve, normalisation or default_normalisation(result.reduction))
    return curve / factor, factor


OUTLINE_LONG_SIDE = 256  # the breast outline needs no finer grid


def _colormap(shown: DisplayMap) -> str:
    return "RdBu_r" if shown.signed else "viridis"


def map_png(shown: DisplayMap) -> bytes:
    """The display map coloured on its range (matplotlib's colormap, 256 levels) as PNG bytes."""
    span = shown.zmax - shown.zmin
    levels = np.rint(np.clip((shown.z - shown.zmin) / span, 0, 1) * 255).astype(np.uint8)
    lut = (matplotlib.colormaps[_colormap(shown)](np.arange(256))[:, :3] * 255).astype(np.uint8)
    return png_bytes(lut[levels])


def _map_traces(shown: DisplayMap, name: str, showscale: bool, colorbar_x: float) -> list:
    """The map as one coloured image (the browser draws it without touching its pixels), and an empty
    trace that carries the colour bar, labelled in the map's values."""
    pitch_r, pitch_c = shown.pitch
    source = "data:image/png;base64," + base64.b64encode(map_png(shown)).decode()
    image = go.Image(
        source=source,
        x0=(pitch_c - 1) / 2,
        dx=pitch_c,
        y0=(pitch_r - 1) / 2,
        dy=pitch_r,
        name=name,
        hovertemplate="row %{y:.0f}, col %{x:.0f}<extra></extra>",
    )
    stops = matplotlib.colormaps[_colormap(shown)](np.linspace(0, 1, 11))
    colorscale = [[k / 10, f"rgb({r * 255:.0f},{g * 255:.0f},{b * 255:.0f})"] for k, (r, g, b, _) in enumerate(stops)]
    scale = go.Scatter(
        x=[None],
        y=[None],
        mode="markers",
        showlegend=False,
        hoverinfo="skip",
        marker=dict(
            colorscale=colorscale,
            cmin=shown.zmin,
            cmax=shown.zmax,
            color=[shown.zmin],
            showscale=showscale,
            colorbar=dict(tickformat=".3g", x=colorbar_x, thickness=12),
        ),
    )
    return [image, scale]


def outline_level(mask: np.ndarray) -> float:
    """Where the breast outline is drawn: half the mean mask's maximum. A right or left row's mean mask
    reaches 1 inside the breasts (the outline at 0.5); the ``all`` row mixes both sides, each about
    half the images, and a fixed 0.5 would trace noise between them."""
    return 0.5 * float(mask.max()) if mask.max() > 0 else 0.5


def _outline_trace(shown: DisplayMap) -> go.Contour:
    mask = area_downsample(shown.mask, OUTLINE_LONG_SIDE)
    pitch_r, pitch_c = (p * n / m for p, n, m in zip(shown.pitch, shown.z.shape, mask.shape))
    level = outline_level(mask)
    return go.Contour(
        z=mask,
        x0=(pitch_c - 1) / 2,
        dx=pitch_c,
        y0=(pitch_r - 1) / 2,
        dy=pitch_r,
        contours=dict(start=level, end=level, size=1, coloring="lines"),
        colorscale=[[0, "white"], [1, "white"]],
        line=dict(width=1.5),
        showscale=False,
        hoverinfo="skip",
        name="breast outline (mean mask)",
    )


def erf_heatmaps(results: Sequence[ERFResult], view: MapView = MapView(), clickable: bool = False) -> go.Figure:
    """ERF maps side by side at display resolution, as ``view`` says (normalisation, scale, clip,
    shared colour range, breast outline), axes in input pixels, the output position's centre marked.

    ``clickable`` adds an invisible point at the centre of every output position (at most about
    4,000, evenly thinned), so a click on a map selects a point (heat maps cannot be selected in
    plotly) whose (y, x) :meth:`ERFResult.position_at` turns into an output position.
    """
    shown = display_maps(results, view)
    fig = make_subplots(rows=1, cols=len(results), subplot_titles=[_label(r) for r in results], horizontal_spacing=0.03)
    for i, (result, display) in enumerate(zip(results, shown), start=1):
        colorbar_x = fig.layout[f"xaxis{i if i > 1 else ''}"].domain[1] + 0.005
        for trace in _map_traces(
            display, result.model_name, showscale=i == len(results) or not view.shared, colorbar_x=colorbar_x
        ):
            fig.add_trace(trace, row=1, col=i)
        if display.mask is not None:
            fig.add_trace(_outline_trace(display), row=1, col=i)
        if clickable:
            rows, cols = _position_centres(result)
            fig.add_trace(
                go.Scatter(
                    x=cols.ravel(),
                    y=rows.ravel(),
                    mode="markers",
                    showlegend=False,
                    hoverinfo="x+y",
                    name="click to choose the output position",
                    marker=dict(size=6, opacity=0),
                ),
                row=1,
                col=i,
            )
        fig.add_trace(
            go.Scatter(
                x=[result.input_centre[1]],
                y=[result.input_centre[0]],
                mode="markers",
                showlegend=False,
                name=f"output position {result.position}",
                marker=dict(symbol="x", size=9, color="red"),
            ),
            row=1,
            col=i,
        )
        fig.update_xaxes(range=[-0.5, result.shape[1] - 0.5], showgrid=False, row=1, col=i)
        fig.update_yaxes(
            range=[result.shape[0] - 0.5, -0.5], scaleanchor=f"x{i if i > 1 else ''}", showgrid=False, row=1, col=i
        )
    norm = view.normalisation or "default"
    fig.update_layout(
        title=f"ERF maps ({view.scale} scale, {norm} normalisation, clip at the "
        f"{view.clip:g}th percentile, {'shared' if view.shared else 'own'} colour range)",
        height=560,
        showlegend=False,
    )
    return fig


def _position_centres(result: ERFResult, most: int = 4000) -> tuple[np.ndarray, np.ndarray]:
    """Input-pixel centres of the output positions, thinned evenly to at most about ``most``."""
    step = max(1, math.ceil(math.sqrt(result.feature_shape[0] * result.feature_shape[1] / most)))
    axes = [
        centre + (np.arange(0, size, step) - index) * stride
        for centre, index, stride, size in zip(
            result.input_centre, result.position, result.stride, result.feature_shape
        )
    ]
    return np.meshgrid(*axes, indexing="ij")


def erf_curves(
    results: Sequence[ERFResult],
    axis: str = "columns",
    sqrt: bool = False,
    band: float | None = 0.95,
    n_boot: int = 500,
    normalisation: str | None = None,
) -> go.Figure:
    """Aggregate curves of several ERFs overlaid, each normalised (``None``: its reduction's default)
    and with a bootstrap band over its images.

    ``axis="columns"``: the curve over columns (map summed over rows, the paper's "across rows");
    ``"rows"``: the curve over rows. ``band``: the band's level, ``None`` for no band.
    """
    fig = go.Figure()
    for i, result in enumerate(results):
        _add_curve(fig, result, axis, sqrt, band, n_boot, normalisation, colour(result, i), _label(result))
    what = "column (summed over rows)" if axis == "columns" else "row (summed over columns)"
    fig.update_layout(
        title=f"{'Sqrt ' if sqrt else ''}ERF {AXES[axis]}: per {what}",
        xaxis_title=f"input {axis[:-1]}",
        yaxis_title="sqrt |ERF|" if sqrt else "ERF",
        height=380,
    )
    return fig


def _add_curve(
    fig: go.Figure,
    result: ERFResult,
    axis: str,
    sqrt: bool,
    band: float | None,
    n_boot: int,
    normalisation: str | None,
    line_colour: str,
    label: str,
    showlegend: bool = True,
    **where,
) -> None:
    curve, factor = normalised_curve(result, axis, normalisation)
    if sqrt:
        curve = np.sqrt(np.abs(curve))
    x = np.arange(curve.size)
    if band is not None and result.n > 1:
        low, high = curve_band(result, axis, band, n_boot=n_boot, sqrt=sqrt, scale=factor)
        fig.add_trace(
            go.Scatter(
                x=np.concatenate([x, x[::-1]]),
                y=np.concatenate([high, low[::-1]]),
                fill="toself",
                fillcolor=_rgba(line_colour, 0.2),
                line=dict(width=0),
                hoverinfo="skip",
                showlegend=False,
                name=f"{label} band",
            ),
            **where,
        )
    fig.add_trace(
        go.Scatter(
            x=x,
            y=curve,
            mode="lines",
            line=dict(color=line_colour),
            name=label,
            legendgroup=label,
            showlegend=showlegend,
        ),
        **where,
    )


def erf_small_multiples(
    result: ERFResult,
    view: MapView = MapView(),
    names: Sequence[str] | None = None,
    max_images: int = 24,
    columns: int = 6,
) -> go.Figure:
    """The first ``max_images`` per-image ERFs of ``result`` (its thumbnails), each normalised on its
    own and drawn on ``view``'s scale with one colour range, titled by ``names`` (default: indices)."""
    thumbnails = result.image_thumbnails[:max_images]
    count = len(thumbnails)
    rows = math.ceil(count / columns)
    names = list(names) if names is not None else [str(i) for i in result.indices]
    how = view.normalisation_for(result.reduction)
    small = [area_downsample(t, 128) for t in thumbnails]
    shown = [scaled(t / normaliser(t, how), view.scale, t.size) for t in small]
    limit = max(float(np.percentile(np.abs(np.concatenate([s.ravel() for s in shown])), view.clip)), 1e-30)
    fig = make_subplots(
        rows=rows,
        cols=min(columns, count),
        subplot_titles=names[:count],
        horizontal_spacing=0.01,
        vertical_spacing=0.06,
    )
    signed = result.reduction == "mean"
    for k, z in enumerate(shown):
        fig.add_trace(
            go.Heatmap(
                z=z,
                zmin=-limit if signed else 0,
                zmax=limit,
                showscale=k == 0,
                colorscale="RdBu_r" if signed else "Viridis",
                hoverinfo="skip",
            ),
            row=k // columns + 1,
            col=k % columns + 1,
        )
    fig.update_xaxes(visible=False)
    fig.update_yaxes(visible=False, autorange="reversed")
    fig.update_layout(
        title=f"{result.model_name}: per-image ERFs ({count} of {result.n}, {view.scale} scale)", height=60 + 170 * rows
    )
    return fig


def picture_figure(
    picture: np.ndarray,
    title: str = "",
    marker: tuple[float, float] | None = None,
    click_grid: int | None = None,
    boxes: Sequence[tuple[float, float, float, float]] = (),
    height: int = 600,
) -> go.Figure:
    """An RGB picture (``uint8`` ``(H, W, 3)``, e.g. :func:`hct.explain.display.overlays.overlay_picture`) sent
    as one PNG, zoomable; ``marker`` marks a ``(row, col)``; ``boxes`` ``(row0, col0, row1, col1)``
    are outlined (findings).

    ``click_grid`` adds invisible points every that many pixels, so a click on the picture selects a
    point (images cannot be selected in plotly) and its ``(y, x)`` is the clicked position.
    """
    rows, cols = picture.shape[:2]
    source = "data:image/png;base64," + base64.b64encode(png_bytes(picture)).decode()
    fig = go.Figure(go.Image(source=source, hoverinfo="skip"))
    if click_grid:
        grid_rows, grid_cols = np.mgrid[click_grid // 2 : rows : click_grid, click_grid // 2 : cols : click_grid]
        fig.add_trace(
            go.Scatter(
                x=grid_cols.ravel(),
                y=grid_rows.ravel(),
                mode="markers",
                name="click to query",
                marker=dict(size=max(4, min(click_grid, 24)), opacity=0),
                hoverinfo="x+y",
                showlegend=False,
            )
        )
    if marker is not None:
        fig.add_trace(
            go.Scatter(
                x=[marker[1]],
                y=[marker[0]],
                mode="markers",
                name="query",
                showlegend=False,
                marker=dict(symbol="x", size=12, color="white", line=dict(width=1, color="black")),
            )
        )
    for row0, col0, row1, col1 in boxes:
        fig.add_shape(
            type="rect",
            x0=col0 - 0.5,
            x1=col1 - 0.5,
            y0=row0 - 0.5,
            y1=row1 - 0.5,
            line=dict(color="#ffd400", width=2, dash="dash"),
        )
    fig.update_xaxes(visible=False, range=[-0.5, cols - 0.5])
    fig.update_yaxes(visible=False, range=[rows - 0.5, -0.5], scaleanchor="x")
    fig.update_layout(title=title, height=height, margin=dict(l=0, r=0, t=30 if title else 0, b=0))
    return fig


def erf_summary_figure(
    results: Sequence[ERFResult], view: MapView = MapView(), normalisation: str | None = None
) -> MplFigure:
    """A matplotlib figure (no pyplot, any backend): each model's map on ``view``, then both
    normalised curves and their square roots, models overlaid."""
    n = max(len(results), 2)
    fig = MplFigure(figsize=(3.2 * n, 11), layout="constrained")
    grid = fig.add_gridspec(3, n)
    for i, (result, shown) in enumerate(zip(results, display_maps(results, view))):
        ax = fig.add_subplot(grid[0, i])
        _draw_map(ax, shown)
        ax.set_title(f"{view.scale} ERF: {_label(result)}", fontsize=8)
    for row, sqrt in ((1, False), (2, True)):
        for half, axis in enumerate(("columns", "rows")):
            ax = fig.add_subplot(grid[row, half * n // 2 : (half + 1) * n // 2])
            for i, result in enumerate(results):
                _plot_curve(ax, result, axis, sqrt, normalisation, colour(result, i), _label(result))
            ax.set_title(f"{'Sqrt ' if sqrt else ''}ERF {AXES[axis]}", fontsize=9)
            ax.legend(fontsize=7)
    return fig


def _draw_map(ax, shown: DisplayMap) -> None:
    height, width = shown.z.shape[0] * shown.pitch[0], shown.z.shape[1] * shown.pitch[1]
    extent = (-0.5, width - 0.5, height - 0.5, -0.5)
    ax.imshow(shown.z, cmap="RdBu_r" if shown.signed else "viridis", vmin=shown.zmin, vmax=shown.zmax, extent=extent)
    if shown.mask is not None:
        ax.contour(
            shown.mask,
            levels=[outline_level(shown.mask)],
            colors="white",
            linewidths=0.8,
            extent=(extent[0], extent[1], extent[3], extent[2]),
        )
    ax.axis("off")


def _plot_curve(
    ax, result: ERFResult, axis: str, sqrt: bool, normalisation: str | None, line_colour: str, label: str
) -> None:
    curve, factor = normalised_curve(result, axis, normalisation)
    if sqrt:
        curve = np.sqrt(np.abs(curve))
    ax.plot(curve, color=line_colour, label=label, linewidth=1)
    if result.n > 1:
        low, high = curve_band(result, axis, n_boot=200, sqrt=sqrt, scale=factor)
        ax.fill_between(np.arange(curve.size), low, high, color=line_colour, alpha=0.2, linewidth=0)


TABLE1_COLUMNS = (
    ("ERF", "columns", False),
    ("ERF", "rows", False),
    ("Sqrt ERF", "columns", True),
    ("Sqrt ERF", "rows", True),
)


def table1_figure(
    results: Sequence[ERFResult],
    subsets: Sequence[str] = ("all", "right", "left"),
    normalisation: str | None = None,
    band: float | None = 0.95,
) -> go.Figure:
    """The paper's Tab. 1 / Tab. A2 layout: one row per subset; ERF and Sqrt ERF across rows and
    across columns; every model's normalised curve overlaid in its paper colour."""
    titles = [f"{subset}: {name} {AXES[axis]}" for subset in subsets for name, axis, _ in TABLE1_COLUMNS]
    fig = make_subplots(
        rows=len(subsets),
        cols=len(TABLE1_COLUMNS),
        subplot_titles=titles,
        horizontal_spacing=0.05,
        vertical_spacing=0.08,
    )
    models = list(dict.fromkeys(r.model_name for r in results))
    for row, subset in enumerate(subsets, start=1):
        for col, (_, axis, sqrt) in enumerate(TABLE1_COLUMNS, start=1):
            for result in (r for r in results if r.subset == subset):
                index = models.index(result.model_name)
                _add_curve(
                    fig,
                    result,
                    axis,
                    sqrt,
                    band,
                    300,
                    normalisation,
                    colour(result, index),
                    f"{result.model_name}",
                    showlegend=row == col == 1,
                    row=row,
                    col=col,
                )
    fig.update_layout(
        title="Effective receptive field, laid out as the paper's Table 1 (rows: subsets)",
        height=300 * len(subsets) + 80,
    )
    return fig


def table1_png(
    results: Sequence[ERFResult], subsets: Sequence[str] = ("all", "right", "left"), normalisation: str | None = None
) -> MplFigure:
    """:func:`table1_figure` in matplotlib, for the PNG."""
    fig = MplFigure(figsize=(16, 3.2 * len(subsets)), layout="constrained")
    axes = fig.subplots(len(subsets), len(TABLE1_COLUMNS), squeeze=False)
    models = list(dict.fromkeys(r.model_name for r in results))
    for row, subset in enumerate(subsets):
        for col, (name, axis, sqrt) in enumerate(TABLE1_COLUMNS):
            ax = axes[row][col]
            for result in (r for r in results if r.subset == subset):
                _plot_curve(
                    ax,
                    result,
                    axis,
                    sqrt,
                    normalisation,
                    colour(result, models.index(result.model_name)),
                    f"{result.model_name} (N={result.n})",
                )
            ax.set_title(f"{subset}: {name} {AXES[axis]}", fontsize=9)
            ax.legend(fontsize=6)
    return fig


def localization_figure(summary: pd.DataFrame, refs: Sequence[ModelRef] = ()) -> MplFigure:
    """Energy inside the finding and pointing-game hit rate per method, one bar per model, with 95%
    bootstrap intervals; black ticks mark what a uniform map would score (the finding's area share).
    Each model is drawn in its ref's colour (``refs``: the models summarised, by label), else the palette's."""
    colours = {ref.label: ref.colour for ref in refs}
    methods = list(dict.fromkeys(summary["method"]))
    models = list(dict.fromkeys(summary["model"]))
    width = 0.8 / max(len(models), 1)
    fig = MplFigure(figsize=(max(6.0, 1.6 * len(methods) * max(len(models), 1) ** 0.5), 6.5), layout="constrained")
    for row, (score, what) in enumerate(
        (("energy", "energy inside the finding"), ("hit_rate", "pointing-game hit rate"))
    ):
        ax = fig.add_subplot(2, 1, row + 1)
        low_key, high_key = ("energy_low", "energy_high") if score == "energy" else ("hit_low", "hit_high")
        for i, model in enumerate(models):
            part = summary[summary["model"] == model].set_index("method").reindex(methods)
            x = np.arange(len(methods)) + (i - (len(models) - 1) / 2) * width
            values = part[score].to_numpy(dtype=float)
            errors = np.abs(
                np.stack([values - part[low_key].to_numpy(dtype=float), part[high_key].to_numpy(dtype=float) - values])
            )
            ax.bar(
                x,
                values,
                width,
                yerr=errors,
                capsize=2,
                label=model,
                color=colours.get(model) or PALETTE[i % len(PALETTE)],
            )
            if score == "energy":
                ax.hlines(part["area_share"].to_numpy(dtype=float), x - width / 2, x + width / 2, colors="black", lw=1)
        ax.set_xticks(np.arange(len(methods)), [m.replace("_", " ") for m in methods], fontsize=8)
        ax.set_ylim(0, 1)
        ax.set_ylabel(what, fontsize=8)
        if row == 0:
            ax.legend(fontsize=7, ncols=min(len(models), 3))
    fig.suptitle("Where explanations point (95% bootstrap intervals over images; black: a uniform map)", fontsize=9)
    return fig
