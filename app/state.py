"""Per-session state: the selected image set shared by every page, and the cancel check."""

from __future__ import annotations

import hashlib
import io
import os
from dataclasses import dataclass

import streamlit as st

from hct.data import ImageRecord, builtin_samples, parse_size

IMAGES_KEY = "hct_images"
SIZES = ("416x320", "832x640", "1664x1280", "3328x2560")
DEFAULT_SIZE = "1664x1280"  # the shipped checkpoints' resolution; an ERF of two models over 8 images takes ~7 s on 2 CPU cores (bench/RESULTS.md)


@dataclass(frozen=True)
class ImageItem:
    """One image of the session's set: an upload held in memory (``data``) or a file on disk (``record.path``)."""

    key: str
    name: str
    record: ImageRecord
    data: bytes | None = None

    @property
    def source(self) -> io.BytesIO | str:
        """What ``read_mammogram`` reads: the path, or the upload in memory under its file name."""
        if self.data is None:
            return self.record.path
        stream = io.BytesIO(self.data)
        stream.name = self.name
        return stream


def upload_item(name: str, data: bytes) -> ImageItem:
    """An uploaded file, keyed by its content (laterality/view come from the image when read)."""
    key = hashlib.sha256(data).hexdigest()[:16]
    return ImageItem(key=key, name=name, record=ImageRecord(image_id=name, path=f"<upload:{name}>"), data=data)


def record_item(record: ImageRecord) -> ImageItem:
    """A data set image on disk, keyed by its path."""
    return ImageItem(key=record.path, name=record.image_id, record=record)


def images() -> list[ImageItem]:
    """The session's selected image set; the built-in samples until the user picks others."""
    if IMAGES_KEY not in st.session_state:
        st.session_state[IMAGES_KEY] = [record_item(r) for r in builtin_samples()]
    return st.session_state[IMAGES_KEY]


def set_images(items: list[ImageItem]) -> None:
    st.session_state[IMAGES_KEY] = list(items)


def size_options() -> list[str]:
    """Model input sizes offered; ``HCT_APP_MAX_SIZE`` (e.g. ``128x96``) caps them and becomes the default."""
    cap = os.environ.get("HCT_APP_MAX_SIZE")
    if not cap:
        return list(SIZES)
    rows, cols = parse_size(cap)
    smaller = [s for s in SIZES if parse_size(s)[0] < rows and parse_size(s)[1] <= cols]
    return [f"{rows}x{cols}", *smaller]


def default_size() -> str:
    options = size_options()
    return DEFAULT_SIZE if DEFAULT_SIZE in options else options[0]


def stop_requested() -> bool:
    """True once the user clicked anything (Cancel included) while a long computation runs.

    Streamlit queues a rerun on every click; the library's cancel check reads it here so the work
    stops at the next image instead of finishing for nothing. Internal API: False if it changes.
    """
    from streamlit.runtime.scriptrunner_utils.script_requests import ScriptRequestType
    from streamlit.runtime.scriptrunner_utils.script_run_context import get_script_run_ctx

    ctx = get_script_run_ctx(suppress_warning=True)
    requests = getattr(ctx, "script_requests", None)
    return getattr(requests, "_state", ScriptRequestType.CONTINUE) != ScriptRequestType.CONTINUE


FOUR_VIEWS = (("R", "CC"), ("L", "CC"), ("R", "MLO"), ("L", "MLO"))


def complete_exams(items: list[ImageItem]) -> dict[str, list[ImageItem]]:
    """Exams holding all four views, each in R-CC, L-CC, R-MLO, L-MLO order."""
    by_exam: dict[str, dict[tuple[str, str], ImageItem]] = {}
    for item in items:
        if item.record.exam_id:
            by_exam.setdefault(item.record.exam_id, {})[(item.record.laterality, item.record.view)] = item
    return {exam: [views[v] for v in FOUR_VIEWS] for exam, views in by_exam.items() if all(v in views for v in FOUR_VIEWS)}
