"""Every evaluation table and figure of a predictions table, computed at once and written to a folder."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from hct.eval import figures, static_figures
from hct.eval.breakdowns import (
    SIZE_THRESHOLDS,
    finding_size_auc,
    finding_type_auc,
    image_stage,
    model_names,
    overall_auc,
    params_millions,
    score_table,
    size_tertile_auc,
    table3,
)
from hct.eval.predictions import validate_predictions
from hct.eval.roc import BootstrapOptions, roc_auc, roc_curve_points
from hct.io import atomic_write
from hct.reports import write_figures_html


@dataclass
class EvaluationReport:
    """The tables of one evaluation; breakdowns and ROC curves are of the image stage (or all rows).

    ``overall`` holds every model's (and stage's) AUC with its interval, ``roc`` each model's ROC curve
    (false- and true-positive rates) and ``roc_auc`` its AUC.
    """

    overall: pd.DataFrame
    finding_type: pd.DataFrame
    finding_size: pd.DataFrame
    size_tertiles: pd.DataFrame
    table3: pd.DataFrame | None = None
    roc: dict[str, tuple[np.ndarray, np.ndarray]] = field(default_factory=dict)
    roc_auc: dict[str, float] = field(default_factory=dict)


def evaluate(
    predictions: pd.DataFrame,
    *,
    reference: str | None = None,
    bootstrap: BootstrapOptions = BootstrapOptions(),
    thresholds: Sequence[float] = SIZE_THRESHOLDS,
    params: Mapping[str, float] | None = None,
) -> EvaluationReport:
    """All tables of ``predictions``; differences are against ``reference`` (default: the first model).

    With a ``stage`` column, auc.csv covers every stage, Table 3 is built and the breakdowns use the
    image stage (the patch stage when there is no image stage).
    """
    predictions = validate_predictions(predictions)
    overall = overall_auc(predictions, bootstrap=bootstrap)
    image = image_stage(predictions)
    table = None
    if "stage" in predictions.columns:
        table = table3(overall, {**params_millions(predictions), **(params or {})})
    reference = reference or model_names(image)[0]
    roc, aucs = roc_curves(image)
    return EvaluationReport(
        overall=overall,
        finding_type=finding_type_auc(image, reference, bootstrap=bootstrap),
        finding_size=finding_size_auc(image, reference, thresholds, bootstrap=bootstrap),
        size_tertiles=size_tertile_auc(image, reference, bootstrap=bootstrap),
        table3=table,
        roc=roc,
        roc_auc=aucs,
    )


def roc_curves(predictions: pd.DataFrame) -> tuple[dict[str, tuple[np.ndarray, np.ndarray]], dict[str, float]]:
    """Each model's ROC curve (false- and true-positive rates) and AUC; empty when a class is missing."""
    scores = score_table(predictions)
    labels = scores["label"].to_numpy()
    curves, aucs = {}, {}
    if 0 < labels.sum() < labels.size:
        for model in model_names(predictions):
            fpr, tpr, _ = roc_curve_points(labels, scores[model].to_numpy())
            curves[model], aucs[model] = (fpr, tpr), roc_auc(labels, scores[model].to_numpy())
    return curves, aucs


def write_report(report: EvaluationReport, out_dir: str | Path) -> list[Path]:
    """Write the report's CSV tables, PNG figures and offline HTML figures (one shared plotly.min.js)."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    tables = {
        "auc": report.overall,
        "finding_type": report.finding_type,
        "finding_size": report.finding_size,
        "size_tertiles": report.size_tertiles,
        "table3": report.table3,
    }
    written = []
    for name, frame in tables.items():
        if frame is not None:
            atomic_write(out / f"{name}.csv", lambda tmp, frame=frame: frame.to_csv(tmp, index=False))
            written.append(out / f"{name}.csv")
    plots = {
        "finding_type": (
            figures.finding_type_figure(report.finding_type),
            lambda p: static_figures.save_finding_type_png(report.finding_type, p),
        ),
        "finding_size": (
            figures.size_threshold_figure(report.finding_size),
            lambda p: static_figures.save_size_threshold_png(report.finding_size, p),
        ),
        "size_tertiles": (
            figures.tertile_figure(report.size_tertiles),
            lambda p: static_figures.save_tertile_png(report.size_tertiles, p),
        ),
    }
    if report.roc:
        plots["roc"] = (
            figures.roc_figure(report.roc, report.roc_auc),
            lambda p: static_figures.save_roc_png(report.roc, report.roc_auc, p),
        )
    for name, (figure, save_png) in plots.items():
        save_png(out / f"{name}.png")
        html, script = write_figures_html([figure], out / f"{name}.html", name.replace("_", " ").capitalize())
        written += [out / f"{name}.png", html]
    written.append(script)
    return written
