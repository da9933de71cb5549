"""The hospital's PACS in the app: its configuration (``[pacs]`` in ``.streamlit/secrets.toml``, or
``HCT_PACS_*`` variables; never typed on a page), a study retrieved into the session as a task, and an
exam's results written as DICOM (:mod:`hct.explain.display.dicom_results`), stored into the PACS or downloaded.

Pages call ``config()``, ``retrieve(row) -> Task`` (its result: the study's images as session items)
and ``results_section(...)`` (the reading view's "Results as DICOM").
"""

from __future__ import annotations

import hashlib
import io
import zipfile
from collections.abc import Sequence
from pathlib import Path

import streamlit as st

from hct.data import ImageRecord, view_name
from hct.data.image.dicom_write import write_dataset
from hct.data.pacs import Pacs, PacsConfig, StudyRow, pacs_config
from hct.data.sets.exams import uid_key
from hct.errors import HCTError
from hct.explain import Attribution, Explanation
from hct.explain.display.dicom_results import KINDS, Producer, result_objects, view_result
from hct.models.ref import ref_of
from hct.runtime.serving import Task

from app import loaders, state, tasks, widgets
from app.state import ImageItem

KIND_NAMES = {
    "overlay": "Overlays (Secondary Capture)",
    "map": "Maps (Parametric Map)",
    "report": "Probabilities (Structured Report)",
}


def _secrets_section() -> dict:
    """The ``[pacs]`` section of the app's secrets (empty without one)."""
    try:
        return dict(st.secrets.get("pacs", {}))
    except (FileNotFoundError, KeyError, AttributeError, st.errors.StreamlitSecretNotFoundError):
        return {}


def config() -> PacsConfig | None:
    """The PACS whoever runs the app configured (secrets ``[pacs]``, then ``HCT_PACS_*``), or None."""
    return pacs_config(_secrets_section())


def client() -> Pacs:
    """A client of the configured PACS; a clear error when none is configured."""
    found = config()
    if found is None:
        raise HCTError("no PACS is configured for this app; whoever runs it sets [pacs] in .streamlit/secrets.toml")
    return Pacs(found)


def retrieve(row: StudyRow) -> Task:
    """Retrieve ``row``'s MG instances into the session (in memory) as this session's task ``pacs-retrieve``;
    its result is ``(items, skipped)``."""

    def work(task: Task) -> tuple[list[ImageItem], tuple[str, ...]]:
        task.step(f"retrieving {len(row.instances)} images from the PACS")
        retrieved = client().retrieve(row.study_uid, progress=task.progress, cancel=task.cancelled)
        exam, items = uid_key(row.study_uid), []
        for n, (ref, data) in enumerate(retrieved.instances, 1):
            name = f"PACS {row.study_date} {ref.view_label} ({n})"
            record = ImageRecord(
                image_id=name,
                path=f"{state.PACS_PREFIX}{exam}/{n}>",
                exam_id=exam,
                laterality=ref.laterality,
                view=ref.view,
            )
            key = "pacs:" + hashlib.sha256(data).hexdigest()  # keyed by content, as an upload: no UID leaves here
            items.append(ImageItem(key=key, name=name, record=record, data=data))
        return items, retrieved.skipped

    return tasks.start("pacs-retrieve", work, images=0, size=None, inputs=(row.study_uid,))


def _source_bytes(item: ImageItem) -> bytes:
    """The item's DICOM file: held in memory (upload, PACS) or on disk."""
    return item.data if item.data is not None else Path(item.record.path).read_bytes()


def _objects(
    model_key: str,
    views: Sequence[ImageItem],
    results: Sequence[Attribution],
    shown: Sequence[Explanation],
    method: str,
    kinds: Sequence[str],
    opacity: float,
    task: Task | None = None,
):
    """The chosen ``kinds`` of DICOM objects of ``views`` (each a view of one study)."""
    done = []
    for item, result, explained in zip(views, results, shown):
        if task is not None:
            task.check()
        overlay = explained.overlay(opacity, long_side=None) if "overlay" in kinds else None
        done.append(
            view_result(
                _source_bytes(item),
                item.record.laterality,
                item.record.view,
                explained.pre,
                result.heatmap,
                result.probability,
                explained.shown.region,
                overlay,
            )
        )
        if task is not None:
            task.progress(len(done), len(views))
    producer = Producer(ref_of(loaders.model(model_key).model, loaders.choice(model_key).label), method)
    return result_objects(done, producer, kinds)


def _zip(objects) -> bytes:
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as archive:
        for n, ds in enumerate(objects, 1):
            archive.writestr(f"{n:02d}_{ds.Modality}_{ds.get('Laterality', '') or 'exam'}.dcm", write_dataset(ds))
    return out.getvalue()


def _stored_lines(objects) -> list[str]:
    """What was stored, by series."""
    series: dict[str, list] = {}
    for ds in objects:
        series.setdefault(f"{ds.SeriesDescription} (series {ds.SeriesNumber})", []).append(ds)
    return [f"{name}: {len(items)} object{'s' * (len(items) != 1)}" for name, items in series.items()]


def results_section(
    model_key: str,
    views: Sequence[ImageItem],
    size: str,
    results: Sequence[Attribution],
    shown: Sequence[Explanation],
    method: str,
    opacity: float,
) -> None:
    """The exam's results as DICOM objects for one view or the whole exam: stored into the PACS the
    exam came from (a button), or downloaded (for a site without STOW)."""
    if not all(item.data is not None or item.record.path.lower().endswith((".dcm", ".dicom")) for item in views):
        return  # pictures (PNG, TIFF) have no study to file results in
    with st.expander("Results as DICOM: store into the PACS, or download"):
        cols = st.columns([1, 2])
        labels = ["Whole exam", *(view_name(v.record.laterality, v.record.view) for v in views)]
        scope = cols[0].selectbox("For", labels, key="pacs-results-scope")
        kinds = cols[1].multiselect(
            "Objects", KINDS, default=list(KINDS), format_func=KIND_NAMES.get, key="pacs-results-kinds"
        )
        chosen = range(len(views)) if scope == labels[0] else [labels.index(scope) - 1]
        inputs = (model_key, size, method, tuple(views[i].key for i in chosen), tuple(kinds))
        picked = ([views[i] for i in chosen], [results[i] for i in chosen], [shown[i] for i in chosen])
        st.caption(
            "Each kind goes into the exam's study as a new series made by HCT Explorer, with the model and "
            "its checkpoint's sha256. These objects carry the study's patient, as every object of a study "
            "does: they are for the PACS."
        )
        left, right = st.columns(2)
        stored = all(state.from_pacs(v) for v in views) and config() is not None
        if left.button(
            "Store in the PACS",
            type="primary",
            disabled=not (stored and kinds),
            help=None if stored else "Open the exam from the PACS (Images page) to store its results there.",
        ):

            def work(task: Task) -> list[str]:
                task.step("writing the DICOM objects")
                objects = _objects(model_key, *picked, method, kinds, opacity, task)
                task.step(f"storing {len(objects)} objects")
                client().store(objects)
                return _stored_lines(objects)

            widgets.run_safely(
                lambda: tasks.start("pacs-store", work, images=0, size=None, inputs=inputs), "Storing in the PACS"
            )
        task = tasks.task("pacs-store")
        lines = widgets.follow("pacs-store", "Storing in the PACS") if task and task.inputs == inputs else None
        if lines:
            st.success("Stored in the PACS:\n" + "\n".join(f"- {line}" for line in lines))
        identified = right.checkbox(
            "Download them to file by hand: they carry the patient's identity",
            key="pacs-results-identity",
            help="For a PACS without STOW. Every other download of the app carries no patient identity.",
        )
        if identified:  # asked for: the app's downloads are otherwise free of identity
            right.download_button(
                "Download (DICOM, zip)",
                disabled=not kinds,
                file_name="hct_results_dicom.zip",
                data=lambda: _zip(_objects(model_key, *picked, method, kinds, opacity)),
                mime="application/zip",
                on_click="ignore",
                key="pacs-results-download",
            )


def _date(text: str) -> str:
    """A DICOM date (YYYYMMDD) as YYYY-MM-DD."""
    return f"{text[:4]}-{text[4:6]}-{text[6:8]}" if len(text) == 8 and text.isdigit() else text


def search_table(rows: Sequence[StudyRow]) -> list[dict]:
    """The results table: study date, description, MG instances and views (no patient identity, no
    accession number: the visit's identifier)."""
    return [
        {
            "study date": _date(r.study_date),
            "description": r.description,
            "MG instances": len(r.instances),
            "views": r.views,
        }
        for r in rows
    ]
