"""Plotly figures of the breakdowns: cells without an AUC left out, one colour per model across figures."""

import numpy as np
import pandas as pd

from hct.eval.figures import finding_type_figure, roc_figure, size_threshold_figure, tertile_figure


def sizes():
    rows = [("B", t, 0.01 * i, -0.02, 0.05) for i, t in enumerate((100, 200, 300))]
    rows.append(("B", 400, np.nan, np.nan, np.nan))  # no positives at this threshold
    return pd.DataFrame(rows, columns=["model", "threshold", "difference", "difference_low", "difference_high"]).assign(
        reference="A", n_pos=5
    )


def test_size_threshold_band_and_line_share_the_models_colour():
    fig = size_threshold_figure(sizes(), colours={"B": "#ff7f0e"})
    band, line = fig.data
    assert band.mode == "lines" and band.fillcolor == "rgba(255,127,14,0.25)" and line.line.color == "#ff7f0e"
    assert list(line.x) == [100, 200, 300] and line.name == "B - A"


def test_models_keep_their_colour_and_nan_cells_are_left_out():
    table = pd.DataFrame(
        {
            "model": ["A", "A", "B", "B"],
            "finding_type": ["mass", "calcifications"] * 2,
            "auc": [0.8, np.nan, 0.7, 0.9],
            "low": [0.7, np.nan, 0.6, 0.8],
            "high": [0.9, np.nan, 0.8, 0.95],
            "n_pos": 3,
            "n_neg": 4,
        }
    )
    colours = {"A": "#1f77b4", "B": "#2ca02c"}
    bars = finding_type_figure(table, colours).data
    assert [(b.name, b.marker.color, len(b.y)) for b in bars] == [("A", "#1f77b4", 1), ("B", "#2ca02c", 2)]
    curves = {m: (np.array([0, 1]), np.array([0, 1])) for m in ("B", "A")}
    assert [t.line.color for t in roc_figure(curves, colours=colours).data[:2]] == ["#2ca02c", "#1f77b4"]


def test_tertiles_show_their_size_range():
    table = pd.DataFrame(
        {
            "tertile": ["small", "medium"],
            "size_min": [40.2, 120.0],
            "size_max": [119.6, 260.0],
            "model": "A",
            "auc": [0.7, 0.8],
            "low": [0.6, 0.7],
            "high": [0.8, 0.9],
            "difference": np.nan,
        }
    )
    assert list(tertile_figure(table).data[0].x) == ["small<br>40–120 px", "medium<br>120–260 px"]


def test_a_figure_without_cells_says_so():
    empty = sizes().assign(difference=np.nan)
    assert not size_threshold_figure(empty).data
    assert "no AUC in any cell" in size_threshold_figure(empty).layout.annotations[-1].text
    assert not size_threshold_figure(sizes()).layout.annotations[1:]  # only the reference line's label
