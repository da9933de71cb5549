"""Breakdowns: AUCs of predictions tables — Table 3, by finding type, by finding-size threshold and
tertile, and ROC curves — and where each explanation points on the images with a finding."""

import pandas as pd
import streamlit as st

from hct.eval import validate_predictions, read_predictions
from hct.eval.figures import finding_type_figure, roc_figure, size_threshold_figure, tertile_figure
from hct.explain import LOCALIZATION_METHODS, localization_figure, summarise

from app import compute, state, widgets


def localization_section() -> None:
    """The localization scores (``python -m hct localize``) of the selected set's malignant images with boxes."""
    items = [i for i in state.images() if i.data is None and i.record.label == 1 and i.record.finding_boxes]
    st.caption(f"Each method's map scored against the finding's box on the {len(items)} malignant images with boxes "
               "of the selected set (choose a phantom or manifest on the Images page): the share of the map's "
               "positive mass inside the finding, and whether its maximum lies within 15 px of it.")
    with st.form("localize"):
        models = widgets.model_picker("Models", multi=True, key="bd-loc-models", default=["init:hct_performer_relu"])
        methods = st.multiselect("Methods", LOCALIZATION_METHODS, default=["gradcam", "saliency", "attention"])
        size = widgets.size_picker(models, key="bd-loc-size")
        clicked = st.form_submit_button("Score the maps", type="primary")
    if clicked and not (items and models and methods):
        st.error("Choose models and methods, and a set with malignant images that have finding boxes.")
    elif clicked:
        widgets.run_safely(lambda: compute.start(
            "bd-localization", lambda task: compute.localization(models, items, size, methods, task),
            images=len(items), size=size, models=len(models)), "Scoring the maps")
    rows = widgets.follow("bd-localization", "Scoring the maps")
    if rows is None:
        return
    summary = summarise(rows)
    st.dataframe(summary, hide_index=True, width="stretch")
    st.image(widgets.png_bytes(localization_figure(summary)))
    st.download_button("Scores per image (CSV)", rows.to_csv(index=False), "localization.csv", "text/csv")


st.title("Breakdowns")
if st.segmented_control("Show", ["AUC", "Where explanations point"], default="AUC", key="bd-view") == "Where explanations point":
    localization_section()
    st.stop()
source = st.radio("Predictions", ["Compute for models", "Upload CSV", "CSV path"], horizontal=True)
predictions = None
if source == "Upload CSV":
    files = st.file_uploader("Predictions CSV (one or more)", type=["csv"], accept_multiple_files=True)
    if files:
        predictions = widgets.run_safely(lambda: pd.concat(
            [validate_predictions(pd.read_csv(f), source=f.name) for f in files], ignore_index=True), "Reading the predictions")
elif source == "CSV path":
    path = st.text_input("Predictions file (CSV or Parquet)")
    if path:
        predictions = widgets.run_safely(lambda: read_predictions(path), f"Reading {path}")
else:
    items = [i for i in state.images() if i.data is None and i.record.label in (0, 1)]
    st.caption(f"On the {len(items)} labelled images of the selected set (choose a data set on the Images page).")
    with st.form("predict"):
        models = widgets.model_picker("Models", multi=True, key="bd-models", default=["init:gmic", "init:hct_performer_relu"])
        size = widgets.size_picker(models)
        compute_clicked = st.form_submit_button("Compute predictions", type="primary")
    widgets.untrained_note(models)
    if compute_clicked and not items:
        st.error("The selected image set has no labelled images on disk: choose a data set on the Images page.")
    elif compute_clicked and not models:
        st.error("Choose at least one model.")
    elif compute_clicked:
        widgets.run_safely(lambda: compute.start(
            "bd-predictions", lambda task: pd.concat([compute.predictions(k, items, size, task) for k in models], ignore_index=True),
            images=len(items), size=size, models=len(models)), "Predicting")
    predictions = widgets.follow("bd-predictions", "Predicting")

if predictions is None:
    st.stop()
n_boot = st.select_slider("Bootstrap iterations", [200, 1000, 2000, 10_000], value=1000,
                          help="The paper uses 10,000; fewer is faster for a first look.")
st.download_button("Predictions (CSV)", predictions.to_csv(index=False), "predictions.csv", "text/csv")
report = widgets.run_safely(lambda: compute.evaluation(predictions, n_boot), "The evaluation")
if report is None:
    st.stop()
if report.table3 is not None:
    st.subheader("Table 3")
    st.dataframe(report.table3, hide_index=True, width="stretch")
st.subheader("AUC [95% CI]")
st.dataframe(report.auc, hide_index=True, width="stretch")
left, right = st.columns(2)
left.plotly_chart(finding_type_figure(report.finding_type), key="bd-type")
right.plotly_chart(roc_figure(report.roc, report.roc_auc), key="bd-roc")
left.plotly_chart(size_threshold_figure(report.finding_size), key="bd-size")
right.plotly_chart(tertile_figure(report.size_tertiles), key="bd-tertile")
