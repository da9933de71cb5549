"""Training: launch a run with the paper's defaults, follow the queue, watch a running job, cancel it."""

import time

import pandas as pd
import streamlit as st

from hct.errors import HCTError
from hct.models import display_name, list_models
from hct.train import STAGE_DEFAULTS, TrainConfig
from hct.train.figures import training_curves_figure

from app import loaders, state, widgets

st.title("Training")
store = loaders.job_store()
st.caption(f"Jobs run as `python -m hct train` processes, one per device; their store is `{store.path}`. "
           "A finished job's best checkpoint appears on the Models page.")

with st.form("train"):
    cols = st.columns(4)
    model = cols[0].selectbox("Model", list_models(), format_func=display_name)
    stage = cols[1].selectbox("Stage", list(STAGE_DEFAULTS), help="patch: 512x512 patches; image: full images")
    optimizer = cols[2].selectbox("Optimiser", ["adam", "asam"], format_func={"adam": "Adam", "asam": "Adam + ASAM (rho 0.05)"}.get)
    epochs = cols[3].number_input("Epochs", 1, 1000, 80)
    manifest = st.text_input("Data set manifest (CSV)", placeholder="/data/phantom/manifest.csv")
    cols = st.columns(5)
    size = cols[0].selectbox("Image resolution (HxW)", state.SIZES, index=len(state.SIZES) - 1)
    patch = cols[1].number_input("Patch size", 32, 2048, 512)
    batch = cols[2].number_input("Batch (0: paper default)", 0, 1024, 0,
                                 help=f"paper: {STAGE_DEFAULTS['patch']['batch_size']} (patch), {STAGE_DEFAULTS['image']['batch_size']} (image)")
    lr = cols[3].number_input("Learning rate (0: paper default)", 0.0, 1.0, 0.0, format="%.6f",
                              help=f"paper: {STAGE_DEFAULTS['patch']['lr']} (patch), {STAGE_DEFAULTS['image']['lr']} (image)")
    max_steps = cols[4].number_input("Max steps (0: all)", 0, 10_000_000, 0, help="End a smoke run early")
    launch = st.form_submit_button("Launch", type="primary")

if launch:
    def submit():
        config = TrainConfig(manifest=manifest, model=model, stage=stage, input_size=size, patch_size=patch,
                             epochs=epochs, optimizer=optimizer, batch_size=batch or None, lr=lr or None,
                             max_steps=max_steps or None, out_dir=f"runs/train/{model}-{stage}-{time.strftime('%Y%m%d-%H%M%S')}")
        job = store.submit(config.to_dict())
        store.schedule()
        return job
    job = widgets.run_safely(submit, "Launching the run")
    if job is not None:
        st.success(f"Job {job.id} queued.")


@st.fragment(run_every=3)
def jobs_panel() -> None:
    try:
        jobs = store.schedule()
    except HCTError as err:
        st.error(f"The job store failed: {err}")
        return
    if not jobs:
        st.info("No training jobs yet.")
        return
    st.subheader("Queue and history")
    st.dataframe(pd.DataFrame([{
        "job": j.id, "state": j.state, "model": j.config.get("model"), "stage": j.config.get("stage"),
        "optimiser": j.config.get("optimizer"), "device": j.gpu or "", "created": time.strftime("%Y-%m-%d %H:%M", time.localtime(j.created)),
        "checkpoint": j.checkpoint or "", "error": (j.error or "")[-200:]} for j in jobs]), hide_index=True, width="stretch")
    job = st.selectbox("Follow job", jobs, format_func=lambda j: f"{j.id}: {j.config.get('model')} {j.config.get('stage')} ({j.state})")
    figure = training_curves_figure(store.metrics(job.id), title=f"Job {job.id}: loss and validation AUC")
    if figure is not None:
        st.plotly_chart(figure, key=f"job-curve-{job.id}")
    if not job.finished and st.button("Cancel job", key=f"cancel-{job.id}"):
        widgets.run_safely(lambda: store.cancel(job.id), "Cancelling")
    with st.expander("Log"):
        st.code(widgets.log_tail(job.log_file) or "(empty)")


jobs_panel()
