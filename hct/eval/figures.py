"""Plotly figures of the evaluation tables (shared by the CLI's HTML output and the Streamlit app).

Each builder takes a table from :mod:`hct.eval.breakdowns` and returns a ``plotly.graph_objects.Figure``;
cells without an AUC (NaN with a reason) are left out of the plot. ``colours`` maps a model to its
colour, so that a model keeps its colour across figures; other models take plotly's sequence.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import pandas as pd
import plotly.graph_objects as go
from plotly.colors import qualitative

Colours = Mapping[str, str] | None


def _colour(colours: Colours, model: str, index: int) -> str:
    return (colours or {}).get(model) or qualitative.Plotly[index % len(qualitative.Plotly)]


def _rgba(colour: str, alpha: float) -> str:
    r, g, b = (int(colour[i : i + 2], 16) for i in (1, 3, 5))
    return f"rgba({r},{g},{b},{alpha})"


def _error_bars(rows: pd.DataFrame, value: str, low: str, high: str) -> dict[str, object]:
    return {
        "type": "data",
        "symmetric": False,
        "array": rows[high] - rows[value],
        "arrayminus": rows[value] - rows[low],
    }


def _note_if_empty(fig: go.Figure, rows: pd.DataFrame) -> go.Figure:
    """Say so on a figure that has no cell to draw."""
    if rows.empty:
        fig.add_annotation(
            text="no AUC in any cell (see the reasons in the table)",
            showarrow=False,
            xref="paper",
            yref="paper",
            x=0.5,
            y=0.5,
        )
    return fig


def _auc_range(rows: pd.DataFrame, top: float) -> list[float]:
    """From 0.5 (chance) to ``top``, extended down to show a bar or interval below chance."""
    lowest = float(np.nanmin(rows["low"])) if len(rows) else 0.5
    return [min(0.5, np.floor(lowest * 20) / 20), top]


def finding_type_figure(table: pd.DataFrame, colours: Colours = None) -> go.Figure:
    """AUC by finding type (Table A1), one bar per model with its 95% CI."""
    fig = go.Figure()
    for i, (model, rows) in enumerate(table.dropna(subset=["auc"]).groupby("model", sort=False)):
        fig.add_bar(
            name=model,
            x=rows["finding_type"].str.replace("_", " "),
            y=rows["auc"],
            marker_color=_colour(colours, model, i),
            error_y=_error_bars(rows, "auc", "low", "high"),
            customdata=rows[["n_pos", "n_neg"]],
            hovertemplate="%{x}: AUC %{y:.3f}<br>%{customdata[0]} positives, %{customdata[1]} negatives",
        )
    fig.update_layout(
        barmode="group",
        title="AUC by finding type (malignant vs no finding)",
        xaxis_title="finding type",
        yaxis_title="AUC",
        yaxis_range=_auc_range(table.dropna(subset=["auc"]), 1.02),
    )
    return _note_if_empty(fig, table.dropna(subset=["auc"]))


def size_threshold_figure(table: pd.DataFrame, colours: Colours = None) -> go.Figure:
    """AUC difference to the reference model against the finding-size threshold (Fig. A2a), with 95% CI band."""
    fig = go.Figure()
    rows_all = table.dropna(subset=["difference"])
    for i, (model, rows) in enumerate(rows_all.groupby("model", sort=False)):
        x, colour = rows["threshold"].to_numpy(), _colour(colours, model, i)
        fig.add_scatter(
            x=np.r_[x, x[::-1]],
            y=np.r_[rows["difference_high"], rows["difference_low"][::-1]],
            mode="lines",
            fill="toself",
            fillcolor=_rgba(colour, 0.25),
            line={"width": 0},
            showlegend=False,
            hoverinfo="skip",
            name=model,
        )
        fig.add_scatter(
            x=x,
            y=rows["difference"],
            mode="lines+markers",
            name=f"{model} - {rows['reference'].iloc[0]}",
            line_color=colour,
            customdata=rows[["n_pos"]],
            hovertemplate="size < %{x}: %{y:+.3f} (%{customdata[0]} positives)",
        )
    reference = rows_all["reference"].iloc[0] if len(rows_all) else "reference"
    fig.add_hline(y=0, line_dash="dash", line_color="red", annotation_text=reference)
    fig.update_layout(
        title="AUC difference by finding-size threshold (vs no finding, 95% CI band)",
        xaxis_title="finding size threshold (pixels)",
        yaxis_title="AUC difference",
    )
    return _note_if_empty(fig, rows_all)


def tertile_figure(table: pd.DataFrame, colours: Colours = None) -> go.Figure:
    """AUC per size tertile and model (Fig. A2b), with each model's absolute improvement annotated and
    each tertile's size range (pixels) under its name."""
    fig = go.Figure()
    rows_all = table.dropna(subset=["auc"])
    for i, (model, rows) in enumerate(rows_all.groupby("model", sort=False)):
        text = [f"{d:+.1%}" if np.isfinite(d) else "" for d in rows["difference"]]
        x = [f"{t}<br>{lo:.0f}–{hi:.0f} px" for t, lo, hi in rows[["tertile", "size_min", "size_max"]].to_numpy()]
        fig.add_bar(
            name=model,
            x=x,
            y=rows["auc"],
            text=text,
            textposition="outside",
            marker_color=_colour(colours, model, i),
            error_y=_error_bars(rows, "auc", "low", "high"),
        )
    fig.update_layout(
        barmode="group",
        title="AUC by size tertile (vs no finding; labels: gain over the reference)",
        xaxis_title="size tertile",
        yaxis_title="AUC",
        yaxis_range=_auc_range(rows_all, 1.05),
    )
    return _note_if_empty(fig, rows_all)


def roc_figure(
    curves: Mapping[str, tuple[np.ndarray, np.ndarray]],
    aucs: Mapping[str, float] | None = None,
    colours: Colours = None,
) -> go.Figure:
    """ROC curves: ``curves`` maps a model to its (false-positive rates, true-positive rates)."""
    fig = go.Figure()
    for i, (model, (fpr, tpr)) in enumerate(curves.items()):
        label = f"{model} (AUC {aucs[model]:.3f})" if aucs and model in aucs else model
        fig.add_scatter(x=fpr, y=tpr, mode="lines", name=label, line_color=_colour(colours, model, i))
    fig.add_scatter(x=[0, 1], y=[0, 1], mode="lines", line={"dash": "dot", "color": "grey"}, showlegend=False)
    fig.update_layout(
        title="ROC curves",
        xaxis_title="false positive rate",
        yaxis_title="true positive rate",
        xaxis_range=[0, 1],
        yaxis_range=[0, 1],
    )
    return fig
