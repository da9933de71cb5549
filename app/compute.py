"""The app's heavy computations, cached by their inputs. Each runs inside a session task
(:mod:`app.tasks`: progress, cancel, the compute budget) and on the device through the process's one
queue; the task is passed in and left out of the cache keys.

Inside a task's work:

- ``erfs(model_keys, items, size, subset, task, position=, stage=, reduction=) -> list[ERFResult]``:
  several models' ERFs over ``items``, each image read once (one device slot for them all).
- ``table1(model_keys, items, size, n, seed, reduction, task) -> Table1``: the paper's Table 1 / A2.
- ``attributions(model_key, item, size, methods, task, gradcam_layer) -> dict[str, Attribution]``: captum
  attributions of one image; ``exam(model_key, views, size, method, task, gradcam_layer)`` one method on
  each view of an exam.
- ``predictions(model_key, items, size, task) -> DataFrame``: one model's predictions table.
- ``localization(model_keys, items, size, methods, task) -> DataFrame``: where each method points.

In the page (quick once the layer's input is kept):

- ``attention(model_key, item, size, query, layer) -> AttentionMap``: one position's attention.
- ``shipped_predictions() -> DataFrame``: ``checkpoints/predictions.csv``.
- ``overview(predictions, n_boot, cards) -> Overview``: Table 3, AUC by finding type, ROC curves.
- ``size_breakdowns(predictions, model, reference, n_boot)``: Fig. A2a and A2b of two models
  (bootstrapped on the CPU, in the page).
"""

from __future__ import annotations

from collections.abc import Callable, Hashable, Iterator, Sequence
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd
import streamlit as st

from hct.data import parse_size
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
from hct.explain import (
    DEFAULT_REDUCTION,
    AttentionMap,
    Attribution,
    ERFEngine,
    ERFResult,
    GradientCache,
    attention_map,
    attribute,
    compute_erfs,
    layer_input,
    localize,
    select_subset,
)
from hct.explain.erf.table1 import Table1, compute_table1, sample_table1
from hct.explain.gmic import GmicReading, read_gmic
from hct.models.ref import ModelRef, distinct_labels, ref_of
from hct.runtime.serving import Task

from app import loaders, state
from app.state import ImageItem
from app.tasks import queue

if TYPE_CHECKING:  # pages and the app never call torch; the library does
    import torch

# Result caches of the process: (entries, pickled size). An ERF at 1664x1280 pickles to ~17 MB.
CACHE_LIMITS = {
    "erf": (32, "1GiB"),
    "attribution": (64, "512MiB"),
    "predictions": (16, "64MiB"),
    "shipped": (4, "64MiB"),
    "overview": (16, "64MiB"),
    "size_breakdowns": (32, "64MiB"),
    "table1": (4, "1GiB"),
}


def _cached(name: str, spinner: bool | str = False) -> Callable:
    entries, size = CACHE_LIMITS[name]
    return st.cache_data(show_spinner=spinner, max_entries=entries, max_size=size)


def _label(model_key: str) -> str:
    return loaders.choice(model_key).label


def refs(model_keys: Sequence[str]) -> list[ModelRef]:
    """The models' refs under their choice labels (as :func:`localization` and :func:`predictions` name them)."""
    return [ref_of(loaders.model(key).model, _label(key)) for key in model_keys]


@contextmanager
def _using(model_key: str, task: Task | None = None) -> Iterator[loaders.LoadedModel]:
    """A device queue slot, then the loaded model, for one computation at a time on it (see
    :class:`app.loaders.LoadedModel`); without a task (a quick computation in the page) it waits uncancelled."""
    with queue().slot(
        cancel=task.cancelled if task else None,
        on_wait=task.queued if task else None,
        background=task.background if task else False,
    ):
        loaded = loaders.model(model_key)
        with loaded.lock:
            yield loaded


@contextmanager
def _using_all(model_keys: Sequence[str], task: Task) -> Iterator[dict[str, loaders.LoadedModel]]:
    """One device queue slot, then several loaded models at once, locked in one order (so two tasks
    never wait on each other)."""
    with queue().slot(cancel=task.cancelled, on_wait=task.queued, background=task.background), ExitStack() as stack:
        loaded = {}
        for key in sorted(set(model_keys)):
            loaded[key] = loaders.model(key)
            stack.enter_context(loaded[key].lock)
        yield {key: loaded[key] for key in model_keys}


def _engine(task: Task, items: Sequence[ImageItem]) -> ERFEngine:
    """The ERF engine of a task: its progress and cancel, and the gradient cache on disk (none for images
    from the PACS: nothing of them is written to disk)."""
    cache = None if any(state.from_pacs(item) for item in items) else GradientCache()
    return ERFEngine(progress=task.progress, cancel=task.cancelled, cache=cache)


def _models(loaded: dict[str, loaders.LoadedModel]) -> dict[str, torch.nn.Module]:
    """The loaded models by their label in figures (their ``ref``'s, :func:`hct.models.ref.distinct_labels`)."""
    labels = distinct_labels([ref_of(entry.model) for entry in loaded.values()])
    return {label: entry.model for label, entry in zip(labels, loaded.values())}


def _read_all(items: Sequence[ImageItem], size: str, task: Task) -> list:
    """The items preprocessed as acquired; reading full-size DICOMs takes most of a CPU's time: shown,
    and stoppable between images."""
    task.step("reading the images")
    images = []
    for item in items:
        task.check()
        images.append(loaders.preprocessed(item, size, "acquired"))
        task.progress(len(images), len(items))
    return images


@_cached("erf")
def _erfs(
    model_keys: tuple[str, ...],
    image_keys: tuple[str, ...],
    size: str,
    subset: str,
    position: Hashable,
    stage: int,
    reduction: str,
    _items: Sequence[ImageItem],
    _task: Task,
) -> list[ERFResult]:
    images = _read_all(_items, size, _task)
    chosen = select_subset([loaders.laterality(item) for item in _items], subset, len(_items))
    _task.step(f"ERF of {len(model_keys)} model{'s' * (len(model_keys) != 1)}")
    with _using_all(model_keys, _task) as loaded:
        return compute_erfs(
            _models(loaded),
            images,
            {subset: chosen},
            position=position,
            stage=stage,
            reduction=reduction,
            engine=_engine(_task, _items),
        )


def erfs(
    model_keys: Sequence[str],
    items: Sequence[ImageItem],
    size: str,
    subset: str,
    task: Task,
    *,
    position: str | tuple[int, int] = "centre",
    stage: int = 5,
    reduction: str = DEFAULT_REDUCTION,
) -> list[ERFResult]:
    """The ERFs of several models over ``items`` (acquired orientation) at ``size``: each image is read
    once, per-image gradients come from the disk cache when there; cached by the inputs."""
    return _erfs(
        tuple(model_keys), tuple(i.key for i in items), size, subset, position, stage, reduction, list(items), task
    )


@_cached("table1")
def _table1(
    model_keys: tuple[str, ...],
    image_keys: tuple[str, ...],
    size: str,
    n: int,
    seed: int,
    reduction: str,
    _items: Sequence[ImageItem],
    _task: Task,
) -> Table1:
    sample = sample_table1(len(_items), lambda i: loaders.laterality(_items[i]), n, seed)
    chosen = [_items[i] for i in sample.order]
    images = _read_all(chosen, size, _task)
    _task.step(f"Table 1 of {len(model_keys)} models")
    with _using_all(model_keys, _task) as loaded:
        return compute_table1(
            _models(loaded),
            images,
            sample,
            image_ids=[i.name for i in chosen],
            reduction=reduction,
            engine=_engine(_task, chosen),
            settings={"size": size, "mode": "acquired", "background": "cleared"},
        )


def table1(
    model_keys: Sequence[str], items: Sequence[ImageItem], size: str, n: int, seed: int, reduction: str, task: Task
) -> Table1:
    """The paper's Table 1 / A2 over the session's images: N right, N left and N of either side."""
    return _table1(tuple(model_keys), tuple(i.key for i in items), size, n, seed, reduction, list(items), task)


@_cached("attribution")
def _attribution(
    model_key: str, image_key: str, size: str, method: str, layer: str | None, _item: ImageItem, _task: Task
) -> Attribution:
    image = loaders.preprocessed(_item, size, loaders.input_mode(model_key))
    options = {"layer": layer} if method == "gradcam" and layer else {}
    with _using(model_key, _task) as loaded:
        return attribute(loaded.model, image.tensor, method, **options)


@_cached("attribution")
def _gmic(model_key: str, image_key: str, size: str, _item: ImageItem, _task: Task) -> GmicReading:
    image = loaders.preprocessed(_item, size, loaders.input_mode(model_key))
    with _using(model_key, _task) as loaded:
        return read_gmic(loaded.model, image.tensor)


def gmic(model_key: str, item: ImageItem, size: str, task: Task) -> GmicReading:
    """NYU GMIC's reading of one image (probabilities, saliency maps, crops, attention), cached."""
    task.step(f"{_label(model_key)}: saliency maps, crops and fusion")
    return _gmic(model_key, item.key, size, item, task)


def attributions(
    model_key: str, item: ImageItem, size: str, methods: Sequence[str], task: Task, gradcam_layer: str | None = None
) -> dict[str, Attribution]:
    """Captum attributions of one image by each of ``methods`` (Grad-CAM at ``gradcam_layer``, default
    the last stage), at model resolution, each cached by its inputs."""
    task.step(f"{_label(model_key)}: {', '.join(m.replace('_', ' ') for m in methods)}")
    done = {}
    for method in methods:
        task.check()
        done[method] = _attribution(model_key, item.key, size, method, gradcam_layer, item, task)
        task.progress(len(done), len(methods))
    return done


def exam(
    model_key: str, views: Sequence[ImageItem], size: str, method: str, task: Task, gradcam_layer: str | None = None
) -> list[tuple[Attribution, GmicReading | None]]:
    """One attribution ``method`` of each view of an exam (its probability included), each cached; for
    NYU's GMIC also each view's own reading (benign and malignant probabilities)."""
    task.step(f"{_label(model_key)}: {method.replace('_', ' ')} of {len(views)} views")
    gmic_model = loaders.choice(model_key).architecture == "nyu_gmic"
    done = []
    for item in views:
        task.check()
        reading = _gmic(model_key, item.key, size, item, task) if gmic_model else None
        done.append((_attribution(model_key, item.key, size, method, gradcam_layer, item, task), reading))
        task.progress(len(done), len(views))
    return done


@st.cache_resource(show_spinner=False, max_entries=16)
def _layer_input(model_key: str, image_key: str, size: str, layer: str | None, _item: ImageItem) -> torch.Tensor:
    image = loaders.preprocessed(_item, size)
    with _using(model_key) as loaded:
        return layer_input(loaded.model, layer, image.tensor)


def attention(
    model_key: str, item: ImageItem, size: str, query: tuple[float, float], layer: str | None
) -> AttentionMap:
    """Where the input position ``query`` (row, col) attends in HCT attention ``layer``, in the page.

    The layer's input is kept per model, image, size and layer (a forward pass up to the layer, once);
    each query then costs one attention row, quick enough for a click to redraw at once.
    """
    features = _layer_input(model_key, item.key, size, layer, item)
    image = loaders.preprocessed(item, size)
    with _using(model_key) as loaded:
        return attention_map(loaded.model, image.tensor, query, layer=layer, features=features)


def localization(
    model_keys: Sequence[str], items: Sequence[ImageItem], size: str, methods: Sequence[str], task: Task
) -> pd.DataFrame:
    """Where each method's map points on the malignant images of ``items`` that have finding boxes
    (:func:`hct.explain.localize`), one row per image, model and method."""
    frames = []
    for key in model_keys:
        task.step(f"{_label(key)}: localization")
        with _using(key, task) as loaded:
            frames.append(
                localize(
                    {_label(key): loaded.model},
                    [i.record for i in items],
                    methods,
                    parse_size(size),
                    progress=task.progress,
                    cancel=task.cancelled,
                )
            )
    return pd.concat(frames, ignore_index=True)


@_cached("predictions")
def _predictions(
    model_key: str, image_keys: tuple[str, ...], size: str, _items: Sequence[ImageItem], _task: Task
) -> pd.DataFrame:
    label = _label(model_key)
    _task.step(f"{label}: predictions")
    with _using(model_key, _task) as loaded:
        return predict(
            loaded.model,
            [i.record for i in _items],
            size=parse_size(size),
            **card_preprocessing(loaded.card),
            batch_size=1,
            device=loaders.device(),
            ref=ref_of(loaded.model, label),
            progress=_task.progress,
            cancel=_task.cancelled,
        )


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
    return Overview(
        table3_with_cards(predictions, checkpoint_cards() if cards else {}, bootstrap=bootstrap),
        finding_type_auc(image, bootstrap=bootstrap),
        curves,
        aucs,
    )


@_cached("size_breakdowns", "Bootstrapping AUC differences…")
def size_breakdowns(
    predictions: pd.DataFrame, model: str, reference: str, n_boot: int
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Fig. A2a and A2b of ``model`` against ``reference``: AUCs by finding-size threshold and tertile."""
    image = image_stage(predictions)
    pair, bootstrap = image[image["model"].isin([model, reference])], BootstrapOptions(n_boot)
    return finding_size_auc(pair, reference, bootstrap=bootstrap), size_tertile_auc(
        pair, reference, bootstrap=bootstrap
    )
