"""The app's heavy computations: cached by their inputs, each run in a :class:`hct.serving.Task` of the
session and on the device through the process's one :class:`hct.serving.DeviceQueue`.

A page starts the work and draws it; the work runs in a thread of its own, so it survives the page's
reruns, and its queue position, progress and cancel go through the task (never ``st.*`` calls inside a
cached function: a cache hit would replay them). Pages call:

- ``start(key, work, *, images, size, models=1, inputs=None, job=False) -> Task``: run ``work(task)``
  as this session's task under ``key`` (cancelling the one there); ``images`` x ``size`` x ``models``
  is checked against the compute budget first (below). :func:`app.widgets.follow` draws it and
  returns its result.
- ``task(key) -> Task | None``: this session's task under ``key``.
- ``queue() -> DeviceQueue``: the process's device queue (``HCT_COMPUTE_SLOTS``).
- ``generate_phantom(out_dir, counts, size) -> Task`` and ``phantom_generation(out_dir)``: the phantom
  data set written as a queued job, one per folder for the whole server.
- ``shipped_predictions() -> DataFrame``: ``checkpoints/predictions.csv``.
- ``overview(predictions, n_boot, cards) -> Overview``: Table 3, AUC by finding type, ROC curves.
- ``size_breakdowns(predictions, model, reference, n_boot)``: Fig. A2a and A2b of two models.
  (The evaluation tables are bootstrapped on the CPU, in the page.)

and, inside a task's work (each takes the task for progress and cancel; cache keys leave it out):

- ``erf(model_key, items, size, subset, task) -> ERFResult``: one model's ERF over ``items``.
- ``attributions(model_key, item, size, methods, task) -> dict[str, Attribution]``: captum attributions.
- ``attention(model_key, item, size, query, layer, task) -> AttentionMap``: one position's attention.
- ``predictions(model_key, items, size, task) -> DataFrame``: one model's predictions table.

Big work runs as a queued job rather than being refused. A request over the budget raises
:class:`hct.serving.BudgetExceeded` (which :func:`app.widgets.run_safely` leaves unshown) and is kept:
``follow(key)`` then shows what to lower and a "Run as a queued job" button (:func:`run_as_job`). A
job is a background task: the budget does not limit it, it waits for the device behind every
interactive request, its progress and Cancel show in ``follow(key)`` on whichever visit to the page,
and its result stays in the session until the page starts another request under ``key`` (refused
while the job computes: cancel it first). A page whose action is always big may pass ``job=True``.
So a page needs nothing more than ``run_safely(lambda: start(key, ...))`` and ``follow(key, what)``.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Hashable, Iterator, Mapping, Sequence
from contextlib import contextmanager, nullcontext
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import streamlit as st

from hct.data import generate_phantom as write_phantom
from hct.data import parse_size
from hct.devices import disable_tf32
from hct.eval import (
    BootstrapOptions,
    card_preprocessing,
    finding_size_auc,
    finding_type_auc,
    image_stage,
    predict,
    read_predictions,
    roc_curves,
    size_tertile_auc,
)
from hct.eval.shipped import SHIPPED_PREDICTIONS, checkpoint_cards, table3_with_cards
from hct.explain import AttentionMap, Attribution, ERFResult, attention_map, attribute, compute_erf
from hct.errors import HCTError
from hct.serving import BudgetExceeded, DeviceQueue, Task, check_budget, compute_slots

from app import loaders
from app.state import ImageItem

TASKS = "hct_tasks"
REFUSED = "hct_refused"  # requests over the budget, by key: (request, message), offered as a job
# Result caches of the process: (entries, pickled size). An ERF at 1664x1280 pickles to ~17 MB.
CACHE_LIMITS = {"erf": (32, "1GiB"), "attribution": (64, "512MiB"), "attention": (32, "256MiB"),
                "predictions": (16, "64MiB"), "shipped": (4, "64MiB"), "overview": (16, "64MiB"),
                "size_breakdowns": (32, "64MiB")}


def _cached(name: str, spinner: bool | str = False) -> Callable:
    entries, size = CACHE_LIMITS[name]
    return st.cache_data(show_spinner=spinner, max_entries=entries, max_size=size)


@st.cache_resource(show_spinner=False)
def queue() -> DeviceQueue:
    """The process's device queue, created once; TF32 is switched off for the process with it, before any
    computation, so no session's computation ever sees the flags change (:func:`hct.devices.disable_tf32`)."""
    disable_tf32()
    return DeviceQueue(compute_slots())


def task(key: str) -> Task | None:
    """This session's task under ``key``, if any."""
    return st.session_state.get(TASKS, {}).get(key)


def start(key: str, work: Callable[[Task], Any], *, images: int, size: str, models: int = 1,
          inputs: Hashable = None, job: bool = False) -> Task:
    """Run ``work(task)`` as this session's task under ``key``, cancelling (and dropping) the task there.

    With ``inputs``, a task under ``key`` with equal inputs that is queued, running or done is kept instead.
    ``images`` x ``size`` x ``models`` is the size of the request: checked against the compute budget,
    unless ``job`` (a background job; see the module's docstring). A job still computing under ``key``
    is never dropped for another request: that raises :class:`HCTError` until it is cancelled.
    """
    tasks = st.session_state.setdefault(TASKS, {})
    refused = st.session_state.setdefault(REFUSED, {})
    refused.pop(key, None)
    old = tasks.get(key)
    if inputs is not None and old is not None and old.inputs == inputs and old.state in ("queued", "running", "done"):
        return old
    if old is not None and old.background and not old.finished:
        raise HCTError(f"a queued job is still computing here ({old.note}); wait for it, or cancel it first.")
    tasks.pop(key, None)
    if old is not None:
        old.cancel()
    if not job:
        try:
            check_budget(images, parse_size(size), models)
        except BudgetExceeded as err:
            refused[key] = (dict(work=work, images=images, size=size, models=models, inputs=inputs), str(err))
            raise
    new = Task(work, inputs, background=job)
    new.step(f"{images} image{'s' * (images != 1)} at {size}" + (f", {models} models" if models > 1 else ""))
    tasks[key] = new
    return new.start()


def refusal(key: str) -> str | None:
    """Why this session's last request under ``key`` was refused (over the budget), until another starts."""
    entry = st.session_state.get(REFUSED, {}).get(key)
    return entry[1] if entry else None


def run_as_job(key: str) -> Task:
    """Run the request refused under ``key`` as a background job (``start(..., job=True)``)."""
    request, _ = st.session_state[REFUSED][key]
    return start(key, **request, job=True)


_GENERATING = threading.Lock()


@st.cache_resource(show_spinner=False)
def _generations() -> dict[str, Task]:
    """The phantom generations of the process, by output folder."""
    return {}


def phantom_generation(out_dir: Path) -> Task | None:
    """The generation of ``out_dir`` under way, whichever session started it."""
    task = _generations().get(str(out_dir))
    return task if task is not None and not task.finished else None


def generate_phantom(out_dir: Path, counts: Mapping[str, int], size: tuple[int, int]) -> Task:
    """Write the phantom data set (:func:`hct.data.generate_phantom`: ``counts`` images per split at
    ``size``) to ``out_dir`` as this session's queued job under ``"phantom"``, with progress and cancel.
    A generation of ``out_dir`` under way in any session is refused. Without a GPU it takes a slot of
    the device queue (the CPU is the device), behind interactive requests."""

    def work(task: Task) -> int:
        task.step(f"writing {sum(counts.values()):,} phantom images at {size[0]}x{size[1]}")

        def progress(done: int, total: int) -> None:
            task.progress(done, total)
            task.check()

        on_cpu = loaders.device() == "cpu"
        with queue().slot(cancel=task.cancelled, on_wait=task.queued, background=True) if on_cpu else nullcontext():
            return len(write_phantom(dict(counts), out_dir, size=size, progress=progress))

    with _GENERATING:
        if phantom_generation(out_dir) is not None:
            raise HCTError(f"{out_dir} is being generated already (by another session); wait for it to finish.")
        task = start("phantom", work, images=sum(counts.values()), size=f"{size[0]}x{size[1]}", job=True)
        _generations()[str(out_dir)] = task
    return task


def _label(model_key: str) -> str:
    return loaders.choice(model_key).label


@contextmanager
def _using(model_key: str, task: Task) -> Iterator[loaders.LoadedModel]:
    """A device queue slot, then the loaded model, for one computation at a time on it (see
    :class:`app.loaders.LoadedModel`)."""
    with queue().slot(cancel=task.cancelled, on_wait=task.queued, background=task.background):
        loaded = loaders.model(model_key)
        with loaded.lock:
            yield loaded


@_cached("erf")
def _erf(model_key: str, image_keys: tuple[str, ...], size: str, subset: str, _items: Sequence[ImageItem],
         _task: Task) -> ERFResult:
    _task.step(f"{_label(model_key)}: reading the images")
    images = []
    for item in _items:  # reading full-size DICOMs takes most of a CPU's time: show it, stop between images
        _task.check()
        images.append(loaders.preprocessed(item, size, "acquired"))
        _task.progress(len(images), len(_items))
    lateralities = [loaders.image_meta(item).laterality for item in _items]
    _task.step(f"{_label(model_key)}: ERF")
    with _using(model_key, _task) as loaded:
        return compute_erf(loaded.model, images, lateralities=lateralities, subset=subset, keep_image_maps=False,
                           model_name=loaders.choice(model_key).architecture, progress=_task.progress,
                           cancel=_task.cancelled)


def erf(model_key: str, items: Sequence[ImageItem], size: str, subset: str, task: Task) -> ERFResult:
    """The ERF of one model over ``items`` (acquired orientation) at ``size``, cached by its inputs."""
    return _erf(model_key, tuple(i.key for i in items), size, subset, list(items), task)


@_cached("attribution")
def _attribution(model_key: str, image_key: str, size: str, method: str, _item: ImageItem,
                 _task: Task) -> Attribution:
    image = loaders.preprocessed(_item, size)
    with _using(model_key, _task) as loaded:
        return attribute(loaded.model, image, method)


def attributions(model_key: str, item: ImageItem, size: str, methods: Sequence[str], task: Task) -> dict[str, Attribution]:
    """Captum attributions of one image by each of ``methods``, each cached by its inputs."""
    task.step(f"{_label(model_key)}: {', '.join(m.replace('_', ' ') for m in methods)}")
    done = {}
    for method in methods:
        task.check()
        done[method] = _attribution(model_key, item.key, size, method, item, task)
        task.progress(len(done), len(methods))
    return done


@_cached("attention")
def _attention(model_key: str, image_key: str, size: str, query: tuple[int, int], layer: str | None,
               _item: ImageItem, _task: Task) -> AttentionMap:
    image = loaders.preprocessed(_item, size)
    with _using(model_key, _task) as loaded:
        return attention_map(loaded.model, image, query, layer=layer)


def attention(model_key: str, item: ImageItem, size: str, query: tuple[int, int], layer: str | None,
              task: Task) -> AttentionMap:
    """Where the input position ``query`` (row, col) attends in HCT attention ``layer``, cached by its inputs."""
    task.step(f"{_label(model_key)}: attention of {layer or 'the first layer'}")
    return _attention(model_key, item.key, size, tuple(query), layer, item, task)


@_cached("predictions")
def _predictions(model_key: str, image_keys: tuple[str, ...], size: str, _items: Sequence[ImageItem],
                 _task: Task) -> pd.DataFrame:
    label = _label(model_key)
    _task.step(f"{label}: predictions")

    def progress(done: int, total: int) -> None:
        _task.progress(done, total)
        _task.check()  # predict has no cancel argument: stop at its next image

    with _using(model_key, _task) as loaded:
        return predict(loaded.model, [i.record for i in _items], size=parse_size(size),
                       **card_preprocessing(loaded.card), batch_size=1,
                       device=loaders.device(), model_name=label,
                       checkpoint_sha256=loaded.card.weights_sha256 if loaded.card else "", progress=progress)


def predictions(model_key: str, items: Sequence[ImageItem], size: str, task: Task) -> pd.DataFrame:
    """One model's malignancy probabilities over data set images on disk (preprocessed as its card says),
    cached by their inputs."""
    return _predictions(model_key, tuple(i.key for i in items), size, list(items), task)


@_cached("shipped")
def _read_predictions(path: str, mtime_ns: int) -> pd.DataFrame:
    return read_predictions(path)


def shipped_predictions() -> pd.DataFrame:
    """``checkpoints/predictions.csv``, read again only when the file changes."""
    path = SHIPPED_PREDICTIONS
    return _read_predictions(str(path), path.stat().st_mtime_ns if path.is_file() else 0)


@dataclass(frozen=True)
class Overview:
    """The Breakdowns page's tables of every model: Table 3, AUC by finding type and ROC curves."""

    table3: pd.DataFrame
    finding_type: pd.DataFrame
    roc: dict[str, tuple[np.ndarray, np.ndarray]]
    roc_auc: dict[str, float]


@_cached("overview", "Bootstrapping AUCs…")
def overview(predictions: pd.DataFrame, n_boot: int, cards: bool) -> Overview:
    """Table 3 (its Patch column from the checkpoints' cards when ``cards``), AUC by finding type and
    ROC curves of every model, cached by their inputs."""
    bootstrap, image = BootstrapOptions(n_boot), image_stage(predictions)
    curves, aucs = roc_curves(image)
    return Overview(table3_with_cards(predictions, checkpoint_cards() if cards else {}, bootstrap=bootstrap),
                    finding_type_auc(image, bootstrap=bootstrap), curves, aucs)


@_cached("size_breakdowns", "Bootstrapping AUC differences…")
def size_breakdowns(predictions: pd.DataFrame, model: str, reference: str,
                    n_boot: int) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Fig. A2a and A2b of ``model`` against ``reference``: AUCs by finding-size threshold and tertile."""
    image = image_stage(predictions)
    pair, bootstrap = image[image["model"].isin([model, reference])], BootstrapOptions(n_boot)
    return finding_size_auc(pair, reference, bootstrap=bootstrap), size_tertile_auc(pair, reference, bootstrap=bootstrap)
