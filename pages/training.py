"""Training: make the phantom data set when it is missing, launch a run (one process, or torchrun's K)
with the paper's defaults, see the server's queue, and follow this session's jobs live (curves, each
rank's status and log), cancelling them."""

import time
from pathlib import Path

import pandas as pd
import streamlit as st

from hct.data import load_records
from hct.data.options import BENCHMARK_SPLITS
from hct.data.phantom.generate import split_counts
from hct.data.sets.manifest import MANIFEST_NAME
from hct.data.sets.roots import REPOSITORY, data_roots
from hct.errors import HCTError
from hct.models import display_name, list_models
from hct.train import STAGE_DEFAULTS, Job, JobStore, TrainConfig
from hct.train.figures import training_curves_figure

from app import loaders, state, tasks, widgets

PHANTOM = "data/phantom"  # relative to the repository, a data root
# the phantom sizes offered: label -> (images per split, HxW); times of one CPU core (bench/RESULTS.md)
PHANTOM_SIZES = {
    "Quick: 200 images at 832x640 (under 15 s on 2 cores)": (split_counts(200), (832, 640)),
    "Benchmark: 4,800 images at 1664x1280, as `python -m hct phantom` (about 6 minutes on 2 cores)": (
        BENCHMARK_SPLITS,
        (1664, 1280),
    ),
}
FOLLOW = "hct_train_follow"  # the job this session launched last

CAPTION = (
    "Jobs run as `python -m hct train` processes (under `torchrun` for several), one process per device, "
    "in the server's job queue. A finished job's best checkpoint appears on the Models page, for everyone on "
    "this server."
)


def phantom_section(folder: Path) -> None:
    """Offer to generate the phantom data set into ``folder``, and follow the generation."""
    running, mine = tasks.phantom_generation(folder), tasks.task("phantom")
    if running is not None and running is not mine:
        done, total = running.steps
        st.info(
            f"Another session is generating the phantom data set ({done:,} of {total:,} images); "
            "reload this page when it is done."
        )
        return
    if mine is None or mine.finished:
        st.info(
            "The phantom data set (synthetic DICOM mammograms with known findings) is not there yet: "
            "generate it to train on."
        )
        with st.form("phantom"):
            choice = st.radio("Size", list(PHANTOM_SIZES))
            generate = st.form_submit_button("Generate the phantom data set")
        if generate:
            widgets.run_safely(lambda: tasks.generate_phantom(folder, *PHANTOM_SIZES[choice]), "Generating the phantom")
    written = widgets.follow("phantom", "The phantom data set")
    if written:
        st.success(f"Wrote {written:,} images and {folder.name}/{MANIFEST_NAME}.")


def manifest_control() -> Path | None:
    """The data set's manifest; the phantom's, missing, is offered to generate."""
    manifest = widgets.path_input("Data set manifest (CSV)", key="train-manifest", value=f"{PHANTOM}/{MANIFEST_NAME}")
    if manifest is not None and not manifest.is_file():
        if manifest == (REPOSITORY / PHANTOM / MANIFEST_NAME).resolve():
            phantom_section(manifest.parent)
        else:
            st.warning(
                f"{manifest} does not exist yet; write one with `python -m hct data check` or generate the phantom."
            )
    return manifest


def train_form(slots: int) -> tuple[dict, int, bool]:
    """The run's settings (``TrainConfig``'s fields but the manifest and folder), its processes out of the
    server's ``slots`` training devices, and whether Launch was clicked."""
    with st.form("train"):
        cols = st.columns(5)
        model = cols[0].selectbox("Model", list_models(), format_func=display_name)
        stage = cols[1].selectbox("Stage", list(STAGE_DEFAULTS), help="patch: 512x512 patches; image: full images")
        optimizer = cols[2].selectbox(
            "Optimiser", ["adam", "asam"], format_func={"adam": "Adam", "asam": "Adam + ASAM (rho 0.05)"}.get
        )
        epochs = cols[3].number_input("Epochs", 1, 1000, 80)
        nproc = cols[4].number_input(
            "Processes",
            1,
            slots,
            1,
            help=f"torchrun --nproc-per-node: each process takes "
            f"one of this server's {slots} training device(s), and waits until they are free",
        )
        cols = st.columns(5)
        size = cols[0].selectbox("Image resolution (HxW)", state.SIZES, index=state.SIZES.index("1664x1280"))
        patch = cols[1].number_input("Patch size", 32, 2048, 512)
        batch = cols[2].number_input(
            "Batch (0: paper default)",
            0,
            1024,
            0,
            help=f"paper: {STAGE_DEFAULTS['patch']['batch_size']} (patch), "
            f"{STAGE_DEFAULTS['image']['batch_size']} (image)",
        )
        lr = cols[3].number_input(
            "Learning rate (0: paper default)",
            0.0,
            1.0,
            0.0,
            format="%.6f",
            help=f"paper: {STAGE_DEFAULTS['patch']['lr']} (patch), {STAGE_DEFAULTS['image']['lr']} (image)",
        )
        max_steps = cols[4].number_input("Max steps (0: all)", 0, 10_000_000, 0, help="End a smoke run early")
        clicked = st.form_submit_button("Launch", type="primary")
    settings = {
        "model": model,
        "stage": stage,
        "input_size": size,
        "patch_size": patch,
        "epochs": epochs,
        "optimizer": optimizer,
        "batch_size": batch or None,
        "lr": lr or None,
        "max_steps": max_steps or None,
    }
    return settings, int(nproc), clicked


def submit(store: JobStore, manifest: Path | None, settings: dict, nproc: int) -> Job:
    """Queue a run of ``settings`` on ``manifest`` in the server's job queue."""
    if manifest is None:
        raise HCTError("give the data set's manifest (a CSV under the data roots) above.")
    load_records(manifest, roots=data_roots())  # the manifest exists, and names images under the roots only
    name = f"{settings['model']}-{settings['stage']}-{time.strftime('%Y%m%d-%H%M%S')}"
    config = TrainConfig(manifest=str(manifest), **settings, out_dir=str(store.path.parent / "train" / name))
    job = store.submit(config.to_dict(), nproc=nproc, owner=state.owner())
    store.schedule()
    return job


def launch(store: JobStore, manifest: Path | None, settings: dict, nproc: int) -> None:
    """Queue the run and follow it below."""
    job = widgets.run_safely(lambda: submit(store, manifest, settings, nproc), "Launching the run")
    if job is not None:
        st.session_state[FOLLOW] = job.id
        st.success(f"Job {job.id} queued.")


def ranks_panel(store: JobStore, job: Job) -> None:
    """Each rank's heartbeat and the end of its own log."""
    ranks = store.ranks(job.id)
    now = time.time()
    st.dataframe(
        pd.DataFrame(
            [
                {
                    "rank": r["rank"],
                    "phase": r["phase"],
                    "epoch": r.get("epoch", ""),
                    "step": f"{r['step']}/{r['steps']}" if "step" in r else "",
                    "pid": r.get("pid", ""),
                    "last heartbeat": f"{now - r['time']:.0f} s ago" if "time" in r else "—",
                }
                for r in ranks
            ]
        ),
        hide_index=True,
        width="stretch",
    )
    with st.expander("Log" if job.nproc == 1 else "Logs: torchrun's, then each rank's"):
        st.code(widgets.log_tail(job.log_file) or "(empty)")
        for rank in ranks if job.nproc > 1 else ():
            st.caption(f"rank {rank['rank']}")
            st.code("".join(widgets.log_tail(path, 1500) for path in rank["logs"]) or "(empty)")


@st.fragment(run_every=3)
def jobs_panel(store: JobStore) -> None:
    """The server's queue and history, and this session's jobs live: curves, cancel, each rank (every 3 s)."""
    try:
        jobs = store.schedule()
    except HCTError as err:
        st.error(f"The job store failed: {err}")
        return
    if not jobs:
        st.info("No training jobs yet.")
        return
    me = state.owner()
    st.subheader("Queue and history")
    st.dataframe(
        pd.DataFrame(
            [
                {
                    "job": j.id,
                    "state": j.state,
                    "processes": j.nproc,
                    "model": j.config.get("model"),
                    "stage": j.config.get("stage"),
                    "devices": j.gpu or "",
                    "created": time.strftime("%Y-%m-%d %H:%M", time.localtime(j.created)),
                    "launched by": "you" if j.owner == me else "another session",
                    "error": (j.error or "")[-200:] if j.owner == me else "",
                }
                for j in jobs
            ]
        ),
        hide_index=True,
        width="stretch",
    )
    mine = [j for j in jobs if j.owner == me]
    if not mine:
        st.caption("The jobs launched from this session show here live, with their curves and each process's status.")
        return
    ids = [j.id for j in mine]
    default = ids.index(st.session_state[FOLLOW]) if st.session_state.get(FOLLOW) in ids else 0
    job = st.selectbox(
        "Follow job",
        mine,
        index=default,
        format_func=lambda j: f"{j.id}: {j.config.get('model')} {j.config.get('stage')} ({j.state})",
    )
    figure = training_curves_figure(store.metrics(job.id), title=f"Job {job.id}: loss and validation AUC")
    if figure is not None:
        st.plotly_chart(figure, key=f"job-curve-{job.id}")
    elif not job.finished:
        st.caption("The curves appear with the first logged steps.")
    if not job.finished and st.button("Cancel job", key=f"cancel-{job.id}"):
        widgets.run_safely(lambda: store.cancel(job.id, owner=me), "Cancelling")
    ranks_panel(store, job)


st.title("Training")
store = loaders.job_store()
st.caption(CAPTION)
manifest = manifest_control()
settings, nproc, launched = train_form(len(store.slots({"device": "auto"})))
if launched:
    launch(store, manifest, settings, nproc)
jobs_panel(store)
