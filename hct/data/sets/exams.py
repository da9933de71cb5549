"""Exams: images grouped by exam, hung in the four standard views, and breast-level scores.

A manifest gives each image its ``exam_id``. An upload has none; its exam is its DICOM
StudyInstanceUID, kept only as a keyed hash (:func:`study_key`): the UID itself is never stored
or shown, and the hash means nothing outside this process.
"""

from __future__ import annotations

import hashlib
import io
import secrets
from collections.abc import Callable, Mapping, Sequence
from pathlib import PurePath
from typing import TypeVar

from hct.data.image.reading import NAME_VIEW
from hct.data.records import ImageRecord

T = TypeVar("T")

FOUR_VIEWS = (("R", "CC"), ("L", "CC"), ("R", "MLO"), ("L", "MLO"))  # the usual hanging, left to right, top to bottom
_STUDY_KEY = secrets.token_bytes(16)  # per process: a study key cannot be matched against another's
STUDY_PREFIX = "study:"
NAME_PREFIX = "name:"


def view_name(laterality: str, view: str) -> str:
    """``'R-CC'`` and the like."""
    return f"{laterality}-{view}"


def study_key(source: str | bytes) -> str:
    """The exam id of a DICOM upload (a path or its bytes): a keyed hash of its StudyInstanceUID,
    or '' when it has none (a PNG, TIFF or DICOM without the tag)."""
    import pydicom

    try:
        ds = pydicom.dcmread(
            io.BytesIO(source) if isinstance(source, bytes) else source,
            stop_before_pixels=True,
            force=True,
            specific_tags=["StudyInstanceUID"],
        )
        uid = str(ds.get("StudyInstanceUID", "") or "")
    except Exception:  # not DICOM, or unreadable: no study
        return ""
    return uid_key(uid) if uid else ""


def uid_key(uid: str) -> str:
    """A StudyInstanceUID's keyed hash (``study:...``): what the app and the access log name a study by."""
    return STUDY_PREFIX + hashlib.blake2b(uid.encode(), key=_STUDY_KEY, digest_size=8).hexdigest()


def exam_from_name(name: str) -> str:
    """The exam of an upload whose file name names its view (``0_L-CC.png``): files named alike but
    for the view (``0_R-MLO.png``...) share it; ``''`` when the name names no view."""
    stem, found = NAME_VIEW.subn("", PurePath(name).name)
    return f"{NAME_PREFIX}{stem.lower()}" if found else ""


def complete_exams(items: Sequence[T], record: Callable[[T], ImageRecord] = lambda item: item) -> dict[str, list[T]]:
    """Exams holding all four views, each hung as :data:`FOUR_VIEWS` (R-CC, L-CC, R-MLO, L-MLO).

    ``record`` gives an item's :class:`ImageRecord` (default: the item is one); items without an
    ``exam_id`` belong to no exam. When a view appears twice, the later image is hung.
    """
    by_exam: dict[str, dict[tuple[str, str], T]] = {}
    for item in items:
        rec = record(item)
        if rec.exam_id:
            by_exam.setdefault(rec.exam_id, {})[(rec.laterality, rec.view)] = item
    return {
        exam: [views[v] for v in FOUR_VIEWS] for exam, views in by_exam.items() if all(v in views for v in FOUR_VIEWS)
    }


def exam_label(exam_id: str, index: int) -> str:
    """What to call an exam on screen: its manifest id, or 'DICOM study N' for a study key (an upload's or
    a PACS study's)."""
    return f"DICOM study {index + 1}" if exam_id.startswith(STUDY_PREFIX) else exam_id


def breast_scores(view_probabilities: Mapping[tuple[str, str], float]) -> dict[str, float]:
    """Each breast's score: the mean malignancy probability over that breast's views.

    ``view_probabilities`` maps ``(laterality, view)`` to a probability; breasts without a view are left out.
    """
    scores = {}
    for side in ("R", "L"):
        values = [p for (laterality, _), p in view_probabilities.items() if laterality == side]
        if values:
            scores[side] = sum(values) / len(values)
    return scores
