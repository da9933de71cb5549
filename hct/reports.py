"""Offline HTML pages of plotly figures (the CLI's reports and the app's downloads)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import plotly.graph_objects as go
import plotly.offline

from hct.io import atomic_write

PLOTLY_JS = "plotly.min.js"


def figures_html(figures: Sequence[go.Figure], title: str, *, local_plotlyjs: bool = False) -> str:
    """One HTML page of ``figures``: plotly.js inlined (self-contained), or loaded from a local
    ``plotly.min.js`` beside the page. Never from a CDN, so it works offline."""
    head = (
        f'<script src="{PLOTLY_JS}"></script>'
        if local_plotlyjs
        else f"<script>{plotly.offline.get_plotlyjs()}</script>"
    )
    body = "\n".join(fig.to_html(full_html=False, include_plotlyjs=False) for fig in figures)
    return (
        f'<!DOCTYPE html><html><head><meta charset="utf-8"><title>{title}</title>{head}</head>'
        f"<body><h1>{title}</h1>\n{body}</body></html>"
    )


def write_figures_html(figures: Sequence[go.Figure], path: str | Path, title: str) -> list[Path]:
    """Write the page and, once per folder, the ``plotly.min.js`` it loads; returns both paths."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    script = path.parent / PLOTLY_JS
    if not script.exists():
        atomic_write(script, plotly.offline.get_plotlyjs())
    atomic_write(path, figures_html(figures, title, local_plotlyjs=True))
    return [path, script]
