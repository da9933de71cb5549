"""Images: choose the session's image set (upload, built-in samples, phantom, manifest or a public data set
as downloaded, with the data check's report) and browse it."""

import pandas as pd
import streamlit as st

from hct.data import (
    FORMATS,
    DataReport,
    ImageRecord,
    builtin_samples,
    complete_exams,
    exam_label,
    sample_images,
    write_checked_manifest,
)
from hct.data.pacs import StudyQuery

from app import loaders, pacs, reading, state, tasks, widgets
from app.state import ImageItem

# source -> (data check format, or None to choose one; path label; placeholder)
CHECKED_SOURCES = {
    "Phantom data set": ("manifest", "Phantom folder (holds manifest.csv)", "data/phantom"),
    "Manifest": ("manifest", "Manifest CSV path", "data/manifest.csv"),
    "Public data set": (None, "Folder it was downloaded to", "data/cbis-ddsm"),
}
BUILTIN = "Built-in samples"
INTRO = (
    "The set chosen here is shared with the ERF explorer, Attention and Breakdowns pages. "
    "Uploads stay in memory and are never written to disk."
)


def manifest_writer(report: DataReport, fmt: str) -> None:
    """Write the checked data set's labelled images as a manifest the Training page can train on."""
    if st.toggle("Write a training manifest", key="images-manifest-writer"):
        st.caption(
            "The labelled images with train/val/test splits (the data set's own test split kept, a tenth "
            "of the training patients as val), as `python -m hct data check --write-manifest` writes it. "
            "Give its path on the Training page to train on it."
        )
        target = widgets.path_input(
            "Manifest CSV", key="images-write-manifest", value=f"data/{fmt.replace('-', '_')}.csv"
        )
        replace = st.checkbox("Replace the file if it exists", key="images-replace-manifest")
        if target is not None and st.button("Write manifest"):
            written = widgets.run_safely(
                lambda: write_checked_manifest(report, target, replace=replace), "Writing the manifest"
            )
            if written is not None:
                splits = ", ".join(f"{name} {count:,}" for name, count in sorted(written[1].items()))
                st.success(f"Wrote {written[0]}: {sum(written[1].values()):,} labelled images ({splits}).")


def pacs_source() -> None:
    """Search the PACS configured for the app (MG studies by patient ID, accession, dates) and open a study:
    its MG images retrieved into the session (in memory), hung as the four-view exam."""
    if pacs.config() is None:
        st.info(
            "No PACS is configured for this app. Whoever runs it sets the server in a [pacs] section of "
            '.streamlit/secrets.toml (see the README, "Connect to your PACS").'
        )
        return
    with st.form("pacs-search"):
        cols = st.columns(4)
        patient = cols[0].text_input("Patient ID", key="pacs-patient")
        accession = cols[1].text_input("Accession number", key="pacs-accession")
        date_from = cols[2].date_input("Study date from", value=None, key="pacs-from")
        date_to = cols[3].date_input("Study date to", value=None, key="pacs-to")
        if st.form_submit_button("Search the PACS", type="primary"):
            query = StudyQuery(patient.strip(), accession.strip(), date_from, date_to)
            st.session_state["pacs-rows"] = widgets.run_safely(
                lambda: pacs.client().search(query), "Searching the PACS"
            )
    rows = st.session_state.get("pacs-rows")
    if rows is None:
        return
    if not rows:
        st.info("No mammography (MG) study matches; widen the dates or check the patient ID.")
        return
    st.dataframe(pd.DataFrame(pacs.search_table(rows)), hide_index=True, width="stretch")
    index = st.selectbox(
        "Study",
        range(len(rows)),
        key="pacs-study",
        format_func=lambda i: (
            f"{rows[i].study_date} · {rows[i].description or 'no description'} · "
            f"{len(rows[i].instances)} MG ({rows[i].views})"
        ),
    )
    if st.button("Open this study", type="primary", key="pacs-open"):
        widgets.run_safely(lambda: pacs.retrieve(rows[index]), "Retrieving the study")
    task = tasks.task("pacs-retrieve")
    if task is None or task.inputs != (rows[index].study_uid,):
        return
    done = widgets.follow("pacs-retrieve", "Retrieving the study")
    if not done:
        return
    items, skipped = done
    if st.session_state.get("pacs-opened") is not task:  # once per retrieval: the set may be changed later
        st.session_state["pacs-opened"] = task
        state.set_images(items)
        if complete_exams(items, record=lambda i: i.record):
            st.session_state["attn-mode"] = "Four-view exam"
    st.success(f"{len(items)} MG images of the study are held in this session (in memory, never on disk).")
    if skipped:
        st.warning("Not retrieved: " + "; ".join(skipped) + ".")
    st.page_link("../pages/attention.py", label="Read the exam on the Attention page", icon=":material/visibility:")


def upload_source() -> None:
    """Uploaded DICOM, PNG or TIFF files, read in memory, as the session's images."""
    files = st.file_uploader("DICOM, PNG or TIFF mammograms", accept_multiple_files=True)
    if files and st.button("Use these images", type="primary"):
        items = []
        for file in files:
            item = widgets.run_safely(
                lambda f=file: loaders.with_tags(state.upload_item(f.name, f.getvalue())), f"Reading {file.name}"
            )
            if item is not None:
                items.append(item)
        if items:
            state.set_images(items)
            st.success(f"{len(items)} of {len(files)} files selected.")


def checked_source(source: str) -> list[ImageRecord] | None:
    """The records of a folder or manifest, with the data check's report (and the manifest writer)."""
    fmt, label, placeholder = CHECKED_SOURCES[source]
    fmt = fmt or st.selectbox("Format", [f for f in FORMATS if f != "manifest"])
    path = widgets.path_input(label, key=f"images-{source}", placeholder=placeholder)
    if not path:
        return None
    check = tasks.task("data-check")
    if check is None or check.inputs != (fmt, str(path)):  # checking reads every header: once per source
        widgets.run_safely(lambda: tasks.check_data_set("data-check", path, fmt), f"Checking {path}")
    report = widgets.follow("data-check", f"Checking {path}")
    if report is None:
        return None
    shown = st.error if not report.usable else st.warning if report.missing or report.unreadable else st.success
    shown(report.summary())
    with st.expander("Data check report", expanded=not report.usable):
        st.text("\n".join(report.lines()))
    st.button(
        "Check again",
        on_click=tasks.check_data_set,
        args=("data-check", path, fmt, True),
        help="Read the folder again: files added or changed since are indexed, the rest come from the index cache.",
    )
    if report.usable and fmt != "manifest":
        manifest_writer(report, fmt)
    return list(report.records)


def sample_picker(records: list[ImageRecord]) -> None:
    """Choose N of ``records`` (of one split, by seed) as the session's images."""
    cols = st.columns([1, 1, 1, 2])
    n = cols[0].number_input("N images", 1, len(records), min(len(records), 8))
    seed = cols[1].number_input("Seed", 0, 10_000, 0)
    split = cols[2].selectbox("Split", ["any", *sorted({r.split for r in records if r.split})])
    pool = [r for r in records if split == "any" or r.split == split]
    if cols[3].button(f"Use {min(n, len(pool)):,} of {len(pool):,} images", type="primary"):
        chosen = pool if n >= len(pool) else [pool[i] for i in sample_images(len(pool), n, seed=seed)]
        state.set_images([state.record_item(r) for r in chosen])


def selection_table(items: list[ImageItem]) -> None:
    """The session's images, one row of metadata each."""
    st.subheader(f"Selected: {len(items)} images")
    rows = [
        row
        for row in (widgets.run_safely(lambda i=i: loaders.metadata_row(i), f"Reading {i.name}") for i in items)
        if row
    ]
    st.dataframe(pd.DataFrame(rows), hide_index=True, width="stretch")


def image_browser(items: list[ImageItem]) -> None:
    """One image, or a four-view exam, as acquired, with window and level."""
    exams = complete_exams(items, record=lambda i: i.record)
    view = st.radio("View", ["Four-view exam", "One image"] if exams else ["One image"], horizontal=True)
    if view == "Four-view exam":
        exam = st.selectbox("Exam", list(exams), format_func=lambda e: exam_label(e, list(exams).index(e)))
        shown = exams[exam]
    else:
        shown = [st.selectbox("Image", items, format_func=lambda i: i.name)]
    low, high = widgets.pixel_range(loaders.display_pixels(shown[0]))
    level = st.slider("Level", low, high, (low + high) / 2)
    window = st.slider("Window", 1.0, max(high - low, 1.0), max(high - low, 1.0))
    for column, item in zip(st.columns(len(shown)), shown):
        with column:
            title = f"{item.record.laterality}-{item.record.view}" if len(shown) > 1 else item.name
            reading.modality_warning(item)  # the reader's warning (another modality, masked pixels, pages...)
            st.plotly_chart(
                widgets.image_figure(
                    loaders.display_pixels(item), window, level, title, height=420 if len(shown) > 1 else 720
                ),
                key=f"img-{item.key}",
            )


st.title("Images")
st.caption(INTRO)
source = st.radio("Source", [BUILTIN, "Upload", "PACS", *CHECKED_SOURCES], horizontal=True)
if source == "PACS":
    pacs_source()
elif source == "Upload":
    upload_source()
else:
    records = builtin_samples() if source == BUILTIN else checked_source(source)
    if records:
        sample_picker(records)
items = state.images()
selection_table(items)
if items:
    image_browser(items)
