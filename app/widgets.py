"""Small UI pieces shared by pages: safe execution with progress and cancel, image figures, pickers."""

from __future__ import annotations

import io
from collections.abc import Callable, Sequence
from typing import TypeVar

import numpy as np
import pandas as pd
import plotly.graph_objects as go
import streamlit as st
import torch

from hct.data import ImageRecord, parse_size
from hct.errors import HCTError
from hct.eval import EvaluationReport, evaluate, predict
from hct.explain import Attribution, ComputationCancelled, ERFEngine, ERFResult, attribute, compute_erf

from app import loaders, state
from app.state import ImageItem

T = TypeVar("T")


def run_safely(work: Callable[[], T], what: str) -> T | None:
    """Run ``work``; show a clear message instead of a traceback for the failures users can fix."""
    try:
        return work()
    except ComputationCancelled:
        st.warning(f"{what} was cancelled; nothing was kept.")
    except torch.cuda.OutOfMemoryError:
        torch.cuda.empty_cache()
        st.error(f"{what} ran out of GPU memory: choose a smaller resolution or fewer images (N) and try again.")
    except MemoryError:
        st.error(f"{what} ran out of memory: choose a smaller resolution or fewer images (N) and try again.")
    except HCTError as err:
        st.error(f"{what} failed: {err}")
    return None


@st.cache_data(show_spinner=False, max_entries=32)
def _cached_erf(model_key: str, image_keys: tuple[str, ...], size: str, subset: str,
                _items: Sequence[ImageItem]) -> ERFResult:
    label = loaders.choice(model_key).label
    bar = st.progress(0.0, text=f"{label}: starting")
    model, _ = loaders.load_model(model_key)
    images = [loaders.preprocessed(item, size, "acquired") for item in _items]
    lateralities = [loaders.read_image(item).meta.laterality for item in _items]
    engine = ERFEngine(cancel=state.stop_requested,
                       progress=lambda done, total: bar.progress(done / total, text=f"{label}: {done}/{total} images"))
    return compute_erf(model, images, lateralities=lateralities, subset=subset,
                       model_name=loaders.choice(model_key).architecture, engine=engine)


def erf(model_key: str, items: Sequence[ImageItem], size: str, subset: str = "all") -> ERFResult:
    """The ERF of one model over ``items`` at ``size`` with a progress bar, cached by its inputs."""
    return _cached_erf(model_key, tuple(i.key for i in items), size, subset, list(items))


def image_figure(pixels: np.ndarray, window: float | None = None, level: float | None = None,
                 title: str = "", height: int = 520) -> go.Figure:
    """A zoomable grey image with window/level (plotly's zoom and pan)."""
    zmin = zmax = None
    if window is not None and level is not None:
        zmin, zmax = level - window / 2, level + window / 2
    fig = go.Figure(go.Heatmap(z=pixels, colorscale="gray", zmin=zmin, zmax=zmax, showscale=False,
                               hovertemplate="row %{y}, col %{x}: %{z:.0f}<extra></extra>"))
    fig.update_yaxes(autorange="reversed", scaleanchor="x", visible=False)
    fig.update_xaxes(visible=False)
    fig.update_layout(title=title, height=height, margin=dict(l=0, r=0, t=30 if title else 0, b=0))
    return fig


def pixel_range(pixels: np.ndarray) -> tuple[float, float]:
    """The pixel value range, the window/level sliders' bounds."""
    return float(np.min(pixels)), float(np.max(pixels))


def model_picker(label: str, *, multi: bool, default: Sequence[str], key: str) -> list[str] | str:
    """Pick model keys; each default architecture (``init:NAME``) is replaced by its checkpoint when one exists."""
    choices = loaders.model_choices()
    labels = {c.key: c.label for c in choices}
    preferred = []
    for wanted in default:
        architecture = wanted.removeprefix("init:")
        trained = [c.key for c in choices if c.trained and c.architecture == architecture]
        preferred.append(trained[0] if trained else wanted)
    preferred = [k for k in preferred if k in labels] or list(labels)[:2]
    if multi:
        return st.multiselect(label, list(labels), default=preferred, format_func=labels.get, key=key)
    return st.selectbox(label, list(labels), index=list(labels).index(preferred[0]), format_func=labels.get, key=key)


def untrained_note(keys: Sequence[str]) -> None:
    """Say plainly when a chosen model is untrained (no checkpoint)."""
    if any(k.startswith("init:") for k in keys):
        st.info("Models marked *random init* have no trained checkpoint yet: their maps show the "
                "architecture's wiring, not learned behaviour.")


def png_bytes(figure) -> bytes:
    """A matplotlib figure as PNG bytes."""
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=110)
    return buffer.getvalue()


@st.cache_data(show_spinner=False, max_entries=64)
def attribution(model_key: str, image_key: str, size: str, method: str, _item: ImageItem) -> Attribution:
    """One captum attribution of one image, cached by its inputs."""
    model, _ = loaders.load_model(model_key)
    return attribute(model, loaders.preprocessed(_item, size), method)


def clicked_point(chart_key: str) -> tuple[float, float] | None:
    """``(row, col)`` of the last point clicked on the plotly chart ``chart_key``, if any."""
    event = st.session_state.get(chart_key)
    points = (event or {}).get("selection", {}).get("points", []) if isinstance(event, dict) else getattr(
        getattr(event, "selection", None), "points", [])
    if not points:
        return None
    return float(points[0]["y"]), float(points[0]["x"])


@st.cache_data(show_spinner=False, max_entries=16)
def predictions_for(model_key: str, image_keys: tuple[str, ...], size: str, _records: Sequence[ImageRecord]) -> pd.DataFrame:
    """One model's predictions over data set records (with a progress bar), cached by its inputs."""
    model, card = loaders.load_model(model_key)
    label = loaders.choice(model_key).label
    bar = st.progress(0.0, text=f"{label}: predicting")
    return predict(model, list(_records), size=parse_size(size), batch_size=1, device=loaders.device(),
                   model_name=label, checkpoint_sha256=card.weights_sha256 if card else "",
                   progress=lambda done, total: bar.progress(done / total, text=f"{label}: {done}/{total} images"))


@st.cache_data(show_spinner="Bootstrapping AUCs…", max_entries=16)
def evaluation(predictions: pd.DataFrame, n_boot: int) -> EvaluationReport:
    """Every evaluation table of a predictions table, cached by its content."""
    return evaluate(predictions, n_boot=n_boot)


def log_tail(path: str, chars: int = 4000) -> str:
    """The end of a job's log file ('' when it does not exist yet)."""
    try:
        with open(path, "rb") as handle:
            handle.seek(0, 2)
            handle.seek(max(0, handle.tell() - chars))
            return handle.read().decode(errors="replace")
    except OSError:
        return ""
