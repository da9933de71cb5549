"""Breakdowns: AUCs of predictions tables — Table 3, by finding type, by finding-size threshold and
tertile, and ROC curves."""

import pandas as pd
import streamlit as st

from hct.eval import validate_predictions, read_predictions
from hct.eval.predictions import without_identity
from hct.eval.figures import finding_type_figure, roc_figure, size_threshold_figure, tertile_figure

from app import compute, state, widgets

st.title("Breakdowns")
source = st.radio("Predictions", ["Compute for models", "Upload CSV", "CSV path"], horizontal=True)
predictions = None
if source == "Upload CSV":
    files = st.file_uploader("Predictions CSV (one or more)", type=["csv"], accept_multiple_files=True)
    if files:
        predictions = widgets.run_safely(lambda: pd.concat(
            [validate_predictions(pd.read_csv(f), source=f.name) for f in files], ignore_index=True), "Reading the predictions")
elif source == "CSV path":
    path = widgets.path_input("Predictions file (CSV or Parquet)", key="bd-predictions", placeholder="data/predictions.csv")
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
st.download_button("Predictions (CSV)", without_identity(predictions).to_csv(index=False), "predictions.csv", "text/csv")
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
