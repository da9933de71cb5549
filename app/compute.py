"""The app's heavy computations: cached by their inputs, each run in a :class:`hct.serving.Task` of the
session and on the device through the process's one :class:`hct.serving.DeviceQueue`.

A page starts the work and draws it; the work runs in a thread of its own, so it survives the page's
reruns, and its queue position, progress and cancel go through the task (never ``st.*`` calls inside a
cached function: a cache hit would replay them). Pages call:

- ``start(key, work, *, images, size, models=1, inputs=None) -> Task``: run ``work(task)`` as this
  session's task under ``key`` (cancelling the one there); ``images`` x ``size`` x ``models`` is
  checked against the compute budget first (:class:`hct.serving.BudgetExceeded` says what to lower).
  :func:`app.widgets.follow` draws it and returns its result.
- ``task(key) -> Task | None``: this session's task under ``key``.
- ``queue() -> DeviceQueue``: the process's device queue (``HCT_COMPUTE_SLOTS``).
- ``evaluation(predictions, n_boot) -> EvaluationReport``: the evaluation tables (CPU, in the page).

and, inside a task's work (each takes the task for progress and cancel; cache keys leave it out):

- ``erf(model_key, items, size, subset, task) -> ERFResult``: one model's ERF over ``items``.
- ``attributions(model_key, item, size, methods, task, gradcam_layer) -> dict[str, Attribution]``: captum
  attributions of one image; ``exam(model_key, views, size, method, task, gradcam_layer)`` one method on
  each view of an exam.
- ``predictions(model_key, items, size, task) -> DataFrame``: one model's predictions table.
- ``localization(model_keys, items, size, methods, task) -> DataFrame``: where each method points.

and, in the page (quick once the layer's input is kept):

- ``attention(model_key, item, size, query, layer) -> AttentionMap``: one position's attention.
"""

from __future__ import annotations

from collections.abc import Callable, Hashable, Iterator, Sequence
from contextlib import contextmanager
from typing import Any

import pandas as pd
import streamlit as st
import torch

from hct.data import parse_size
from hct.devices import disable_tf32
from hct.eval import EvaluationReport, evaluate, predict
from hct.explain import AttentionMap, Attribution, ERFResult, attention_map, attribute, compute_erf, layer_input, localize
from hct.serving import DeviceQueue, Task, check_budget, compute_slots

from app import loaders
from app.state import ImageItem

TASKS = "hct_tasks"
# Result caches of the process: (entries, pickled size). An ERF at 1664x1280 pickles to ~17 MB.
CACHE_LIMITS = {"erf": (32, "1GiB"), "attribution": (64, "512MiB"), "predictions": (16, "64MiB"),
                "evaluation": (16, "64MiB")}


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
          inputs: Hashable = None) -> Task:
    """Run ``work(task)`` as this session's task under ``key``, cancelling (and dropping) the task there.

    With ``inputs``, a task under ``key`` with equal inputs that is queued, running or done is kept instead.
    ``images`` x ``size`` x ``models`` is the size of the request: checked against the compute budget.
    """
    tasks = st.session_state.setdefault(TASKS, {})
    old = tasks.pop(key, None)
    if inputs is not None and old is not None and old.inputs == inputs and old.state in ("queued", "running", "done"):
        tasks[key] = old
        return old
    if old is not None:
        old.cancel()
    check_budget(images, parse_size(size), models)
    new = Task(work, inputs)
    new.step(f"{images} image{'s' * (images != 1)} at {size}" + (f", {models} models" if models > 1 else ""))
    tasks[key] = new
    return new.start()


def _label(model_key: str) -> str:
    return loaders.choice(model_key).label


@contextmanager
def _using(model_key: str, task: Task | None = None) -> Iterator[loaders.LoadedModel]:
    """A device queue slot, then the loaded model, for one computation at a time on it (see
    :class:`app.loaders.LoadedModel`); without a task (a quick computation in the page) it waits uncancelled."""
    with queue().slot(cancel=task.cancelled if task else None, on_wait=task.queued if task else None):
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
    lateralities = [loaders.read_image(item).meta.laterality for item in _items]
    _task.step(f"{_label(model_key)}: ERF")
    with _using(model_key, _task) as loaded:
        return compute_erf(loaded.model, images, lateralities=lateralities, subset=subset, keep_image_maps=False,
                           model_name=loaders.choice(model_key).architecture, progress=_task.progress,
                           cancel=_task.cancelled)


def erf(model_key: str, items: Sequence[ImageItem], size: str, subset: str, task: Task) -> ERFResult:
    """The ERF of one model over ``items`` (acquired orientation) at ``size``, cached by its inputs."""
    return _erf(model_key, tuple(i.key for i in items), size, subset, list(items), task)


@_cached("attribution")
def _attribution(model_key: str, image_key: str, size: str, method: str, layer: str | None, _item: ImageItem,
                 _task: Task) -> Attribution:
    image = loaders.preprocessed(_item, size)
    options = {"layer": layer} if method == "gradcam" and layer else {}
    with _using(model_key, _task) as loaded:
        return attribute(loaded.model, image.tensor, method, **options)


def attributions(model_key: str, item: ImageItem, size: str, methods: Sequence[str], task: Task,
                 gradcam_layer: str | None = None) -> dict[str, Attribution]:
    """Captum attributions of one image by each of ``methods`` (Grad-CAM at ``gradcam_layer``, default
    the last stage), at model resolution, each cached by its inputs."""
    task.step(f"{_label(model_key)}: {', '.join(m.replace('_', ' ') for m in methods)}")
    done = {}
    for method in methods:
        task.check()
        done[method] = _attribution(model_key, item.key, size, method, gradcam_layer, item, task)
        task.progress(len(done), len(methods))
    return done


def exam(model_key: str, views: Sequence[ImageItem], size: str, method: str, task: Task,
         gradcam_layer: str | None = None) -> list[Attribution]:
    """One attribution ``method`` of each view of an exam (its probability included), each cached."""
    task.step(f"{_label(model_key)}: {method.replace('_', ' ')} of {len(views)} views")
    done = []
    for item in views:
        task.check()
        done.append(_attribution(model_key, item.key, size, method, gradcam_layer, item, task))
        task.progress(len(done), len(views))
    return done


@st.cache_resource(show_spinner=False, max_entries=16)
def _layer_input(model_key: str, image_key: str, size: str, layer: str | None, _item: ImageItem) -> torch.Tensor:
    image = loaders.preprocessed(_item, size)
    with _using(model_key) as loaded:
        return layer_input(loaded.model, layer, image.tensor)


def attention(model_key: str, item: ImageItem, size: str, query: tuple[float, float], layer: str | None) -> AttentionMap:
    """Where the input position ``query`` (row, col) attends in HCT attention ``layer``, in the page.

    The layer's input is kept per model, image, size and layer (a forward pass up to the layer, once);
    each query then costs one attention row, quick enough for a click to redraw at once.
    """
    features = _layer_input(model_key, item.key, size, layer, item)
    image = loaders.preprocessed(item, size)
    with _using(model_key) as loaded:
        return attention_map(loaded.model, image.tensor, query, layer=layer, features=features)


def localization(model_keys: Sequence[str], items: Sequence[ImageItem], size: str, methods: Sequence[str],
                 task: Task) -> pd.DataFrame:
    """Where each method's map points on the malignant images of ``items`` that have finding boxes
    (:func:`hct.explain.localize`), one row per image, model and method."""
    def progress(done: int, total: int) -> None:
        task.progress(done, total)
        task.check()  # localize has no cancel argument: stop at its next image

    frames = []
    for key in model_keys:
        task.step(f"{_label(key)}: localization")
        with _using(key, task) as loaded:
            frames.append(localize({_label(key): loaded.model}, [i.record for i in items], methods,
                                   parse_size(size), progress=progress))
    return pd.concat(frames, ignore_index=True)


@_cached("predictions")
def _predictions(model_key: str, image_keys: tuple[str, ...], size: str, _items: Sequence[ImageItem],
                 _task: Task) -> pd.DataFrame:
    label = _label(model_key)
    _task.step(f"{label}: predictions")

    def progress(done: int, total: int) -> None:
        _task.progress(done, total)
        _task.check()  # predict has no cancel argument: stop at its next image

    with _using(model_key, _task) as loaded:
        return predict(loaded.model, [i.record for i in _items], size=parse_size(size), batch_size=1,
                       device=loaders.device(), model_name=label,
                       checkpoint_sha256=loaded.card.weights_sha256 if loaded.card else "", progress=progress)


def predictions(model_key: str, items: Sequence[ImageItem], size: str, task: Task) -> pd.DataFrame:
    """One model's malignancy probabilities over data set images on disk, cached by their inputs."""
    return _predictions(model_key, tuple(i.key for i in items), size, list(items), task)


@_cached("evaluation", "Bootstrapping AUCs…")
def evaluation(predictions: pd.DataFrame, n_boot: int) -> EvaluationReport:
    """Every evaluation table of a predictions table, cached by its content."""
    return evaluate(predictions, n_boot=n_boot)
