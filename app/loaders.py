"""Process-wide cached resources: the device, the model choices, models (loaded once, read-only, eval mode) and images.

Memory stays bounded: at most ``MODEL_CACHE_SIZE`` models and ``FULL_IMAGES`` full-resolution
mammograms are held (``st.cache_resource`` limits entries only), and what is derived from an image
(its metadata, display pixels and model inputs) is cached apart with an entry and a size limit each
(``IMAGE_CACHE_LIMITS``; ``st.cache_data`` pickles, so it knows each entry's size).
"""

from __future__ import annotations

import io
import os
import threading
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import streamlit as st

from hct.data import Mammogram, MammogramMeta, Preprocessed, parse_size, preprocess, read_mammogram, study_key
from hct.data.image.reading import with_name
from hct.data.sets.exams import exam_from_name
from hct.errors import HCTError
from hct.explain.display.overlays import display_pixels as to_display
from hct.models import DEFAULT_INPUT_SIZE, display_name, list_architectures, model_spec
from hct.models.card import CHECKPOINT_DIR, ModelCard, find_checkpoints, read_card
from hct.models.checkpoints import load_model
from hct.models.nyu_gmic import NYU_ENSEMBLE, NYU_INPUT_SIZE, NYU_PERCENT_T
from hct.models.ref import RANDOM_INIT
from hct.runtime.devices import free_device_memory, resolve_device
from hct.train.jobs import DEFAULT_STORE, JobStore
from hct.train.loop import read_metrics

from app.state import ImageItem

if TYPE_CHECKING:  # pages and the app never call torch; the library does
    import torch

MODEL_CACHE_SIZE = 8  # models held on the device at once; the least recently used one goes first
FULL_IMAGES = 4  # full-resolution mammograms held (a 4432x2864 DICOM reads to 51 MB of float32)
# Image caches of the process: (entries, pickled size). A 1664x1280 input pickles to ~11 MB, a
# display image (1024 rows) to ~3 MB.
IMAGE_CACHE_LIMITS = {"meta": (4096, "8MiB"), "display": (64, "128MiB"), "preprocessed": (64, "512MiB")}


def _image_cache(name: str) -> Callable:
    entries, size = IMAGE_CACHE_LIMITS[name]
    return st.cache_data(show_spinner=False, max_entries=entries, max_size=size)


@dataclass(frozen=True)
class ModelChoice:
    """A model the app can load: a shipped/trained checkpoint, or a registry architecture at random init.

    ``input_size`` is the resolution of its card (the registry's default for an architecture).
    """

    key: str
    label: str
    architecture: str
    input_size: tuple[int, int]
    checkpoint: str | None = None

    @property
    def trained(self) -> bool:
        return self.checkpoint is not None

    @property
    def spec(self) -> str:
        """What :func:`hct.models.checkpoints.load_model` takes: the checkpoint path or the architecture name."""
        return self.checkpoint or self.architecture


@dataclass(frozen=True)
class LoadedModel:
    """A model held on the device (eval mode, read-only) with its card (``None`` at random init).

    Computations on it take ``lock`` first: hooks (Grad-CAM, attention maps) are the model's own, so
    two threads computing on one model at once would see each other's.
    """

    key: str
    model: torch.nn.Module
    card: ModelCard | None
    lock: threading.Lock = field(default_factory=threading.Lock, compare=False)


def device() -> str:
    """``cuda`` when a GPU is visible, else ``cpu``."""
    return resolve_device("auto").type


def _mtime(path: Path) -> int:
    try:
        return path.stat().st_mtime_ns
    except OSError:
        return 0


def model_choices() -> list[ModelChoice]:
    """Every checkpoint found (with a readable card), NYU's GMIC ensemble when their five models are
    imported into ``checkpoints/``, then each architecture at random initialisation.

    Read again only when a checkpoint card in ``checkpoints/`` or the job store changes.
    """
    cards = tuple((str(p), _mtime(p.with_suffix(".json"))) for p in find_checkpoints())
    return list(_choices(cards, _mtime(job_store().path)))


@st.cache_resource(show_spinner=False, max_entries=1)
def _choices(cards: tuple[tuple[str, int], ...], store_mtime: int) -> tuple[ModelChoice, ...]:
    choices, nyu_indices = [], set()
    for path in [*(Path(p) for p, _ in cards), *job_checkpoints()]:
        try:
            card = read_card(path)
        except HCTError:
            continue
        if card.architecture == "nyu_gmic" and path.parent == CHECKPOINT_DIR:
            nyu_indices.add(card.training.get("model_index"))
        stem = path.stem if path.parent.name == "checkpoints" else f"{path.parent.name}/{path.stem}"
        choices.append(
            ModelChoice(
                f"ckpt:{stem}",
                f"{display_name(card.architecture)} — {stem}",
                card.architecture,
                card.input_size or DEFAULT_INPUT_SIZE,
                str(path),
            )
        )
    if nyu_indices >= set(NYU_PERCENT_T):  # all five of NYU's models imported: their ensemble
        choices.append(
            ModelChoice(
                "ckpt:nyu_gmic_ensemble",
                "GMIC (NYU) — ensemble of their five models",
                "nyu_gmic",
                NYU_INPUT_SIZE,
                NYU_ENSEMBLE,
            )
        )
    choices += [
        ModelChoice(f"init:{a}", f"{display_name(a)}{RANDOM_INIT}", a, model_spec(a).input_size)
        for a in list_architectures()
    ]
    return tuple(choices)


def input_mode(model_key: str) -> str:
    """The preprocessing mode the model's inputs are made in (``canonical``; ``nyu_gmic`` for NYU's GMIC)."""
    return model_spec(choice(model_key).architecture).preprocessing_mode


def choice(key: str) -> ModelChoice:
    for item in model_choices():
        if item.key == key:
            return item
    raise HCTError(f"model {key!r} is no longer available; pick another on the Models page")


@st.cache_resource(show_spinner=False)
def _held() -> dict[str, LoadedModel]:
    """The models :func:`model`'s cache holds now, by key (kept in step by its ``on_release``)."""
    return {}


def _released(loaded: LoadedModel) -> None:
    if _held().get(loaded.key) is loaded:
        _held().pop(loaded.key, None)
    free_device_memory()


@st.cache_resource(show_spinner=False, max_entries=MODEL_CACHE_SIZE, on_release=_released)
def model(key: str) -> LoadedModel:
    """The model for ``key`` on the device (:func:`hct.models.checkpoints.load_model`), loaded once per process."""
    net, card = load_model(choice(key).spec, device=device())
    for param in net.parameters():
        param.requires_grad_(False)
    loaded = LoadedModel(key, net, card)
    _held()[key] = loaded
    return loaded


def unload_model(key: str) -> None:
    model.clear(key)


def loaded_models() -> dict[str, str]:
    """The keys of the models held on the device now, with their device."""
    return {key: next(m.model.parameters()).device.type for key, m in list(_held().items())}


def training_curve(checkpoint: str) -> list[dict]:
    """The rows of ``<name>.metrics.jsonl`` (or a training run's ``metrics.jsonl``) next to a checkpoint."""
    path = Path(checkpoint).with_suffix(".metrics.jsonl")
    return read_metrics(path if path.is_file() else Path(checkpoint).parent / "metrics.jsonl")


@st.cache_resource(show_spinner=False, max_entries=FULL_IMAGES)
def _read(key: str, _source: io.BytesIO | str) -> Mammogram:
    return read_mammogram(_source)


def read_image(item: ImageItem) -> Mammogram:
    """The item's mammogram at full resolution (treat the pixels as read-only); held for the last
    ``FULL_IMAGES`` images only: ask for what is derived from it (below) rather than keeping it."""
    return _read(item.key, item.source)


def laterality(item: ImageItem) -> str:
    """``'L'`` or ``'R'``: the record's, else read from the image (tags, or which side the breast lies)."""
    return item.record.laterality or image_meta(item).laterality


@_image_cache("meta")
def _meta(key: str, _item: ImageItem) -> MammogramMeta:
    return read_image(_item).meta


def image_meta(item: ImageItem) -> MammogramMeta:
    """The item's metadata (laterality and view from its tags, else its file name, else laterality
    inferred from the image)."""
    return with_name(_meta(item.key, item), item.name)


@_image_cache("preprocessed")
def _preprocessed(key: str, size: tuple[int, int], mode: str, _item: ImageItem) -> Preprocessed:
    return preprocess(read_image(_item), size, mode)


def preprocessed(item: ImageItem, size: str, mode: str = "canonical") -> Preprocessed:
    """The item as a model input of ``size`` (``HxW``) in preprocessing ``mode``, computed once per process."""
    return _preprocessed(item.key, parse_size(size), mode, item)


@_image_cache("display")
def _display(key: str, _item: ImageItem) -> np.ndarray:
    return to_display(read_image(_item).pixels)


def display_pixels(item: ImageItem) -> np.ndarray:
    """The item's pixels at display resolution (about 1,000 pixels on the long side), for drawing only."""
    return _display(item.key, item)


def with_tags(item: ImageItem) -> ImageItem:
    """The item with laterality and view filled from its image (tags, else its file name, else the
    laterality inferred from the image), and an upload's exam from its DICOM study (a keyed hash of the
    StudyInstanceUID, never the UID) or, without one, from its file name (``0_L-CC.png``...)."""
    meta = image_meta(item)
    exam_id = item.record.exam_id or (study_key(item.data) if item.data is not None else "")
    if not exam_id and item.data is not None and meta.view_from == "name":
        exam_id = exam_from_name(item.name)
    record = replace(
        item.record,
        laterality=item.record.laterality or meta.laterality,
        view=item.record.view or meta.view,
        exam_id=exam_id,
    )
    return replace(item, record=record)


def metadata_row(item: ImageItem) -> dict:
    """The metadata that matters, never a patient-identifying tag."""
    meta = image_meta(item)
    spacing = "x".join(f"{v:.3f}" for v in meta.pixel_spacing) if meta.pixel_spacing else "—"
    return {
        "image": item.name,
        "laterality": meta.laterality,
        "view": meta.view or "?",
        "size (rows x cols)": f"{meta.rows} x {meta.cols}",
        "manufacturer": meta.manufacturer or "—",
        "bit depth": meta.bit_depth,
        "format": meta.file_format,
        "modality": meta.modality or "—",
        "pixel spacing (mm)": spacing,
        "warning": meta.warning or "—",
        "label": {1: "malignant", 0: "non-malignant"}.get(item.record.label, "unknown"),
    }


@st.cache_resource(show_spinner=False)
def _store(path: str) -> JobStore:
    return JobStore(path)


def job_store() -> JobStore:
    """The training job store (``HCT_APP_JOB_STORE`` or ``runs/jobs.sqlite``), shared by all sessions."""
    return _store(os.environ.get("HCT_APP_JOB_STORE", str(DEFAULT_STORE)))


def job_checkpoints() -> list[Path]:
    """Checkpoints written by succeeded training jobs (they appear on the Models page)."""
    return [
        Path(j.checkpoint)
        for j in job_store().list()
        if j.state == "succeeded" and j.checkpoint and Path(j.checkpoint).with_suffix(".json").is_file()
    ]
