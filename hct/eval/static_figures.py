"""Matplotlib PNG versions of the figures in :mod:`hct.eval.figures`, for reports and papers.

Figures are ``matplotlib.figure.Figure`` objects saved directly, never through pyplot, so importing
this module leaves the user's matplotlib backend alone.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

import numpy as np
import pandas as pd
from matplotlib.axes import Axes
from matplotlib.figure import Figure

from hct.io import atomic_write


def _save(fig: Figure, path: Path) -> None:
    atomic_write(path, lambda tmp: fig.savefig(tmp, dpi=120, bbox_inches="tight"))


def _grouped_bars(ax: Axes, table: pd.DataFrame, group: str, annotate: bool) -> None:
    rows_all = table.dropna(subset=["auc"])
    groups = list(dict.fromkeys(table[group]))
    models = list(dict.fromkeys(rows_all["model"]))
    width = 0.8 / max(len(models), 1)
    for i, model in enumerate(models):
        rows = rows_all[rows_all["model"] == model]
        x = np.array([groups.index(g) for g in rows[group]]) + (i - (len(models) - 1) / 2) * width
        err = [rows["auc"] - rows["low"], rows["high"] - rows["auc"]]
        ax.bar(x, rows["auc"], width, yerr=err, capsize=3, label=model)
        if annotate:
            for xi, hi, d in zip(x, rows["high"], rows["difference"]):
                if np.isfinite(d):
                    ax.annotate(f"{d:+.1%}", (xi, hi), ha="center", va="bottom", fontsize=8)
    ax.set_xticks(range(len(groups)), [str(g).replace("_", " ") for g in groups])
    ax.set_ylim(0.5, 1.05)
    ax.set_ylabel("AUC")
    if models:  # no AUC at all (e.g. no finding boxes, so no size breakdown): an empty chart, no legend
        ax.legend()


def save_finding_type_png(table: pd.DataFrame, path: Path) -> None:
    """AUC by finding type with 95% CI error bars."""
    fig = Figure(figsize=(8, 4.5))
    ax = fig.subplots()
    _grouped_bars(ax, table, "finding_type", annotate=False)
    ax.set_title("AUC by finding type (malignant vs no finding)")
    _save(fig, path)


def save_size_threshold_png(table: pd.DataFrame, path: Path) -> None:
    """AUC difference to the reference model by finding-size threshold with its 95% CI band."""
    fig = Figure(figsize=(8, 4.5))
    ax = fig.subplots()
    rows_all = table.dropna(subset=["difference"])
    for model, rows in rows_all.groupby("model", sort=False):
        ax.fill_between(rows["threshold"], rows["difference_low"], rows["difference_high"], alpha=0.25)
        ax.plot(rows["threshold"], rows["difference"], marker="o", label=f"{model} - {rows['reference'].iloc[0]}")
    ax.axhline(0, color="red", linestyle="--")
    ax.set_xlabel("finding size threshold (pixels)")
    ax.set_ylabel("AUC difference")
    ax.set_title("AUC difference by finding-size threshold (vs no finding, 95% CI band)")
    if len(rows_all):
        ax.legend()
    _save(fig, path)


def save_tertile_png(table: pd.DataFrame, path: Path) -> None:
    """AUC per size tertile with each model's improvement over the reference annotated."""
    fig = Figure(figsize=(8, 4.5))
    ax = fig.subplots()
    _grouped_bars(ax, table, "tertile", annotate=True)
    ax.set_title("AUC by size tertile (vs no finding)")
    _save(fig, path)


def save_roc_png(curves: Mapping[str, tuple[np.ndarray, np.ndarray]], aucs: Mapping[str, float], path: Path) -> None:
    """ROC curves of several models."""
    fig = Figure(figsize=(5.5, 5.5))
    ax = fig.subplots()
    for model, (fpr, tpr) in curves.items():
        ax.plot(fpr, tpr, label=f"{model} (AUC {aucs[model]:.3f})")
    ax.plot([0, 1], [0, 1], color="grey", linestyle=":")
    ax.set_xlabel("false positive rate")
    ax.set_ylabel("true positive rate")
    ax.set_title("ROC curves")
    ax.legend(loc="lower right")
    _save(fig, path)
