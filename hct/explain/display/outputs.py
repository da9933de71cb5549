"""ERF results as files: maps (.npz), curves and metrics (CSV), a PNG and an offline HTML report.
The CLI writes them; the app offers the same files as downloads."""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd
import plotly.graph_objects as go

from hct.explain.display.figures import erf_curves, erf_heatmaps, erf_summary_figure, table1_figure, table1_png
from hct.explain.erf.compute import ERFResult, curves_frame
from hct.explain.erf.maps import MapView
from hct.explain.erf.metrics import erf_metrics
from hct.explain.erf.table1 import TABLE_SUBSETS, Table1
from hct.io import atomic_write
from hct.reports import write_figures_html


def save_map(result: ERFResult, path: Path) -> Path:
    """One ERF's full-resolution map, mask, curves and where it was taken, as ``.npz``."""
    atomic_write(
        path,
        lambda tmp: np.savez_compressed(
            tmp,
            map=result.map,
            sqrt_map=result.sqrt_map,
            curve_over_columns=result.curve_over_columns,
            curve_over_rows=result.curve_over_rows,
            image_curves_over_columns=result.image_curves_over_columns,
            image_curves_over_rows=result.image_curves_over_rows,
            position=np.array(result.position),
            input_centre=np.array(result.input_centre),
            stride=np.array(result.stride),
            mask=result.mask if result.mask is not None else np.zeros(0),
            reduction=result.reduction,
            n=result.n,
            stage=-1 if result.stage is None else result.stage,
        ),
    )
    return path


def metrics_frame(results: Sequence[ERFResult]) -> pd.DataFrame:
    """:func:`erf_metrics` of each result, one row each."""
    return pd.DataFrame(
        [
            {
                "model": r.model_name,
                "subset": r.subset,
                "n": r.n,
                "stage": r.stage,
                "position": f"{r.position[0]},{r.position[1]}",
                "reduction": r.reduction,
                **r.remember("metrics", lambda r=r: erf_metrics(r)),
            }
            for r in results
        ]
    )


def write_erf_outputs(results: list[ERFResult], out: Path, view: MapView = MapView(), inputs: str = "") -> list[Path]:
    """Maps and curves (.npz, CSV), metrics (CSV), a PNG summary and an offline HTML report;
    ``inputs`` says how the images were preprocessed (in the report's title)."""
    out.mkdir(parents=True, exist_ok=True)
    written = [save_map(r, out / f"erf_{r.model_name}_{r.subset}.npz") for r in results]
    atomic_write(out / "erf_curves.csv", lambda tmp: curves_frame(results).to_csv(tmp, index=False))
    atomic_write(out / "erf_metrics.csv", lambda tmp: metrics_frame(results).to_csv(tmp, index=False))
    atomic_write(out / "erf.png", lambda tmp: erf_summary_figure(results, view).savefig(tmp, dpi=120))
    written += [out / "erf_curves.csv", out / "erf_metrics.csv", out / "erf.png"]
    figures = [erf_heatmaps(results, view)]
    figures += [erf_curves(results, axis, sqrt) for sqrt in (False, True) for axis in ("columns", "rows")]
    title = "Effective receptive field" + (f" (inputs {inputs})" if inputs else "")
    written += write_figures_html(figures, out / "erf.html", title)
    return written


def _table(frame: pd.DataFrame, title: str) -> go.Figure:
    shown = frame.round(4).astype(object).where(frame.notna(), "")
    fig = go.Figure(
        go.Table(header=dict(values=list(shown.columns)), cells=dict(values=[shown[c] for c in shown.columns]))
    )
    fig.update_layout(title=title, height=60 + 28 * (len(frame) + 1))
    return fig


def write_table1(table: Table1, out: Path, view: MapView = MapView()) -> list[Path]:
    """Table 1 as files: ``table1.png`` and ``table1.html`` (the grid, the maps of each row, the
    metrics), ``table1_metrics.csv``, ``table1_curves.csv``, ``table1_images.csv`` (the images of
    each row and the seed), ``table1_settings.json`` and one ``.npz`` map per model and row."""
    out.mkdir(parents=True, exist_ok=True)
    results = table.results
    metrics = table.metrics()
    atomic_write(out / "table1_metrics.csv", lambda tmp: metrics.to_csv(tmp, index=False))
    atomic_write(out / "table1_curves.csv", lambda tmp: curves_frame(results).to_csv(tmp, index=False))
    atomic_write(out / "table1_images.csv", lambda tmp: table.images_frame().to_csv(tmp, index=False))
    atomic_write(out / "table1_settings.json", json.dumps(table.settings, indent=2, default=str))
    atomic_write(out / "table1.png", lambda tmp: table1_png(results).savefig(tmp, dpi=110))
    written = [
        out / name
        for name in (
            "table1_metrics.csv",
            "table1_curves.csv",
            "table1_images.csv",
            "table1_settings.json",
            "table1.png",
        )
    ]
    written += [save_map(r, out / f"erf_{r.model_name}_{r.subset}.npz") for r in results]
    figures = [table1_figure(results)]
    figures += [erf_heatmaps([r for r in results if r.subset == subset], view) for subset in TABLE_SUBSETS]
    figures.append(_table(metrics, "ERF metrics per model and row (pixels at input resolution)"))
    settings = ", ".join(f"{k} {v}" for k, v in table.settings.items())
    written += write_figures_html(figures, out / "table1.html", f"Table 1: effective receptive fields ({settings})")
    return written
