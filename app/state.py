"""Per-session state: who the session is, the selected image set shared by every page, and the input
sizes offered. Nothing here is shared between sessions: uploads live in the session that made them."""

from __future__ import annotations

import hashlib
import io
import os
import uuid
from dataclasses import dataclass

import streamlit as st

from hct.data import ImageRecord, builtin_samples, parse_size

IMAGES_KEY = "hct_images"
OWNER_KEY = "hct_owner"
SIZES = ("416x320", "832x640", "1664x1280", "2944x1920", "3328x2560")  # the paper's, and NYU GMIC's input
CARD_SIZE = "card"  # the size option that follows the chosen model's card
PACS_PREFIX = "<pacs:"  # the record path of an image retrieved from the PACS (held in memory)


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


def from_pacs(item: ImageItem) -> bool:
    """Whether ``item`` was retrieved from the PACS (:mod:`app.pacs`)."""
    return item.record.path.startswith(PACS_PREFIX)


def owner() -> str:
    """Who this session acts for (training jobs record it): the signed-in user under sign-on, else
    this browser session alone."""
    if st.user.get("is_logged_in"):
        return f"user:{st.user.get('email') or st.user.get('sub')}"
    return st.session_state.setdefault(OWNER_KEY, f"session:{uuid.uuid4().hex}")


def upload_item(name: str, data: bytes) -> ImageItem:
    """An uploaded file, keyed by its content's sha256: two sessions with the same image share the
    process's cached computations on it, and neither sees the other's name for it (laterality/view
    come from the image when read)."""
    key = "upload:" + hashlib.sha256(data).hexdigest()
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


def card_size(input_size: tuple[int, int]) -> str:
    """A model card's input size as an offered size: itself, else the largest offered size within it
    (``HCT_APP_MAX_SIZE`` caps what is offered), else the smallest offered."""
    options = size_options()
    wanted = f"{input_size[0]}x{input_size[1]}"
    if wanted in options:
        return wanted
    within = [s for s in options if parse_size(s)[0] <= input_size[0] and parse_size(s)[1] <= input_size[1]]
    by_area = sorted(within or options, key=lambda s: parse_size(s)[0] * parse_size(s)[1])
    return by_area[-1] if within else by_area[0]
