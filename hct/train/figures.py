"""Training curves from ``metrics.jsonl`` rows, as a plotly figure (the app's Models and Training pages)."""

from __future__ import annotations

from collections.abc import Sequence

import plotly.graph_objects as go


def training_curves_figure(rows: Sequence[dict], title: str = "Training curves") -> go.Figure | None:
    """Training loss per logged step and validation AUC per epoch against the optimiser step.

    Rows carrying a ``stage`` (a zoo checkpoint's patch then image stage) are laid end to end: each
    stage's steps continue from the previous stage's last step, with a dashed line between stages.
    """
    if not rows:
        return None
    fig = go.Figure()
    offset, previous_last = 0, 0
    stages = list(dict.fromkeys(r.get("stage", "") for r in rows))
    for index, stage in enumerate(stages):
        mine = [r for r in rows if r.get("stage", "") == stage]
        if index:
            offset += previous_last
            fig.add_vline(x=offset, line_dash="dash", line_color="gray")
        losses = [r for r in mine if "loss" in r]
        checks = [r for r in mine if "val_auc" in r and r["val_auc"] is not None]
        label = f"{stage} " if stage else ""
        fig.add_scatter(
            x=[offset + r["step"] for r in losses],
            y=[r["loss"] for r in losses],
            mode="lines",
            name=f"{label}training loss",
        )
        fig.add_scatter(
            x=[offset + r["step"] for r in checks],
            y=[r["val_auc"] for r in checks],
            mode="lines+markers",
            name=f"{label}validation AUC",
            yaxis="y2",
        )
        previous_last = max((r.get("step", 0) for r in mine), default=0)
    fig.update_layout(
        title=title,
        xaxis_title="optimiser step",
        yaxis_title="cross-entropy loss",
        height=320,
        yaxis2=dict(title="validation AUC", overlaying="y", side="right", range=[0, 1]),
        legend=dict(orientation="h", y=-0.3),
    )
    return fig
