"""Small UI pieces shared by pages: safe execution, a task's progress and result, image figures, pickers."""

from __future__ import annotations

import io
import logging
import tempfile
import zipfile
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, TypeVar

import numpy as np
import plotly.graph_objects as go
import streamlit as st

from hct.data.sets.roots import OutsideDataRoots, confine
from hct.errors import ComputationCancelled, HCTError, PathError
from hct.models import DEFAULT_INPUT_SIZE
from hct.runtime.devices import OutOfMemoryError, free_device_memory
from hct.runtime.serving import BudgetExceeded, Task

from app import loaders, state, tasks

T = TypeVar("T")
_LOG = logging.getLogger(__name__)
_EXPECTED = (ComputationCancelled, OutOfMemoryError, MemoryError, HCTError)


def _show_failure(err: BaseException, what: str) -> None:
    """A clear message for the failures users can fix (cancel, out of memory, bad input)."""
    if isinstance(err, BudgetExceeded):
        return  # follow(key) shows it, with the offer to run the request as a queued job
    if isinstance(err, ComputationCancelled):
        st.warning(f"{what} was cancelled; nothing was kept.")
    elif isinstance(err, OutOfMemoryError):
        free_device_memory()
        st.error(f"{what} ran out of GPU memory: choose a smaller resolution or fewer images (N) and try again.")
    elif isinstance(err, MemoryError):
        st.error(f"{what} ran out of memory: choose a smaller resolution or fewer images (N) and try again.")
    else:
        st.error(f"{what} failed: {err}")


def run_safely(work: Callable[[], T], what: str) -> T | None:
    """Run ``work``; show a clear message instead of a traceback for the failures users can fix."""
    try:
        return work()
    except _EXPECTED as err:
        _show_failure(err, what)
    return None


def run_page(page: Any) -> None:
    """Run a page (``st.navigation``'s choice): the one wrapper of every page's entry point. A failure the
    user can fix is one line (:func:`run_safely`'s); an OS error (a name too long, a permission) says which
    file; any other exception is one line naming it, its traceback going to the server's log, never the page."""
    try:
        run_safely(page.run, f"The {page.title} page")
    except OSError as err:
        where = f" ({err.filename})" if err.filename else ""
        st.error(
            f"The {page.title} page could not use a file{where}: {err.strerror or err}. Check the path and "
            "its permissions, then try again."
        )
    except Exception as err:  # noqa: BLE001 - a bug, but the visitor gets one line and the log the traceback
        _LOG.exception("the %s page failed", page.title)
        st.error(
            f"The {page.title} page failed: {type(err).__name__}: {str(err).splitlines()[0] if str(err) else ''} "
            "(an unexpected error, logged on the server; please report it)."
        )


def follow(key: str, what: str) -> Any | None:
    """The result of this session's task under ``key`` (:func:`app.tasks.start`) once it has ended.

    While it computes, the page waits for it, showing its progress and a Cancel button; the wait yields
    to Streamlit every half second, so a click reruns the page at once (the task goes on, and the new
    run waits for it again). While it waits for the device queue, the page goes on: "queued, position k"
    and a Cancel button refresh every second. A failed or cancelled task shows its message; a failure
    that is not the user's is raised. A request refused as over the compute budget shows why, and a
    button that runs it as a queued job (:func:`app.tasks.run_as_job`).
    """
    refusal = tasks.refusal(key)
    if refusal is not None:
        st.error(f"{what}: {refusal}")
        st.button(
            "Run as a queued job",
            key=f"{key}-as-job",
            on_click=tasks.run_as_job,
            args=(key,),
            help="It waits for the device behind interactive requests, shows its progress here, and its "
            "result stays in this session.",
        )
        return None
    task = tasks.task(key)
    if task is None:
        return None
    if task.state == "running":
        placeholder = st.empty()
        with placeholder.container():
            bar = st.progress(*_progress(task, what))
            st.button("Cancel", key=f"{key}-cancel", on_click=task.cancel, disabled=task.cancelled())
            while task.state == "running" and not task.wait(0.5):
                bar.progress(*_progress(task, what))
        placeholder.empty()
    if task.state == "queued":
        _queued(key, what)
        return None
    if task.error is not None:
        if not isinstance(task.error, _EXPECTED):
            raise task.error
        _show_failure(task.error, what)
    return task.result


def _progress(task: Task, what: str) -> tuple[float, str]:
    done, total = task.steps
    what = f"{what} (queued job)" if task.background else what
    if task.cancelled():
        return 0.0, f"{what}: cancelling…"
    return (done / total if total else 0.0), f"{what}: {task.note}" + (f" — {done}/{total}" if total else "")


@st.fragment(run_every=1.0)
def _queued(key: str, what: str) -> None:
    task = tasks.task(key)
    if task is None or task.state != "queued":
        st.rerun()
    waiting = "cancelling…" if task.cancelled() else "waiting for the device"
    if task.background:
        what = f"{what} (queued job)"
        waiting += " behind interactive requests; it keeps its place while you use other pages"
    st.info(f"{what}: queued, position {task.position} — {waiting}")
    st.button("Cancel", key=f"{key}-cancel-queued", on_click=task.cancel, disabled=task.cancelled())


PATH_KEY = "path-"  # the key prefix of every path input (tests walk them)


def path_input(label: str, *, key: str, value: str = "", placeholder: str = "") -> Path | None:
    """A server path typed by the user, resolved and confined to the data roots
    (:func:`hct.data.sets.roots.confine`, the one check of every path typed into the app). ``None`` while
    empty, or when refused (the refusal is shown). Every page takes server paths through this."""
    text = st.text_input(label, value=value, placeholder=placeholder, key=PATH_KEY + key).strip()
    if not text:
        return None
    try:
        return confine(text)
    except (OutsideDataRoots, PathError) as err:
        st.error(str(err))
    return None


def size_picker(models: Sequence[str], label: str = "Resolution (HxW)", key: str | None = None) -> str:
    """Pick a model input size; the default follows the first chosen model's card (``input_size``)."""
    card = state.card_size(loaders.choice(models[0]).input_size if models else DEFAULT_INPUT_SIZE)
    picked = st.selectbox(
        label,
        [state.CARD_SIZE, *state.size_options()],
        key=key,
        format_func=lambda s: f"{card} (model card)" if s == state.CARD_SIZE else s,
    )
    return card if picked == state.CARD_SIZE else picked


def image_figure(
    pixels: np.ndarray, window: float | None = None, level: float | None = None, title: str = "", height: int = 520
) -> go.Figure:
    """A zoomable grey image with window/level (plotly's zoom and pan)."""
    zmin = zmax = None
    if window is not None and level is not None:
        zmin, zmax = level - window / 2, level + window / 2
    fig = go.Figure(
        go.Heatmap(
            z=pixels,
            colorscale="gray",
            zmin=zmin,
            zmax=zmax,
            showscale=False,
            hovertemplate="row %{y}, col %{x}: %{z:.0f}<extra></extra>",
        )
    )
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
        st.info(
            "Models marked *random init* have no trained checkpoint yet: their maps show the "
            "architecture's wiring, not learned behaviour."
        )


def png_bytes(figure) -> bytes:
    """A matplotlib figure as PNG bytes."""
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=110)
    return buffer.getvalue()


def folder_zip(write: Callable[[Path], Any]) -> bytes:
    """What ``write(folder)`` writes into an empty folder, as the bytes of a zip archive (for a download)."""
    with tempfile.TemporaryDirectory() as folder:
        write(Path(folder))
        buffer = io.BytesIO()
        with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
            for path in sorted(Path(folder).rglob("*")):
                archive.write(path, path.relative_to(folder))
        return buffer.getvalue()


def clicked_point(chart_key: str) -> tuple[float, float] | None:
    """``(row, col)`` of the last point clicked on the plotly chart ``chart_key``, if any."""
    event = st.session_state.get(chart_key)
    points = (
        (event or {}).get("selection", {}).get("points", [])
        if isinstance(event, dict)
        else getattr(getattr(event, "selection", None), "points", [])
    )
    if not points:
        return None
    return float(points[0]["y"]), float(points[0]["x"])


def log_tail(path: str, chars: int = 4000) -> str:
    """The end of a job's log file ('' when it does not exist yet)."""
    try:
        with open(path, "rb") as handle:
            handle.seek(0, 2)
            handle.seek(max(0, handle.tell() - chars))
            return handle.read().decode(errors="replace")
    except OSError:
        return ""
