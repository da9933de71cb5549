"""The session's tasks: each heavy computation a :class:`hct.runtime.serving.Task` of the session (queue position,
progress and cancel), checked against the compute budget, on the device through the process's one
:class:`hct.runtime.serving.DeviceQueue`. The cached computations themselves are :mod:`app.compute`.

A page starts the work and draws it; the work runs in a thread of its own, so it survives the page's
reruns, and its queue position, progress and cancel go through the task (never ``st.*`` calls inside a
cached function: a cache hit would replay them). Pages call:

- ``start(key, work, *, images, size, models=1, inputs=None, job=False) -> Task``: run ``work(task)``
  as this session's task under ``key`` (cancelling the one there); ``images`` x ``size`` x ``models``
  is checked against the compute budget first (below). :func:`app.widgets.follow` draws it and
  returns its result.
- ``task(key) -> Task | None``: this session's task under ``key``.
- ``queue() -> DeviceQueue``: the process's device queue (``HCT_COMPUTE_SLOTS``).
- ``check_data_set(key, source, fmt, again=False) -> Task``: a data set's check (its ``DataReport``).
- ``generate_phantom(out_dir, counts, size) -> Task`` and ``phantom_generation(out_dir)``: the phantom
  data set written as a queued job, one per folder for the whole server.

Big work runs as a queued job rather than being refused. A request over the budget raises
:class:`hct.runtime.serving.BudgetExceeded` (which :func:`app.widgets.run_safely` leaves unshown) and is kept:
``follow(key)`` then shows what to lower and a "Run as a queued job" button (:func:`run_as_job`). A
job is a background task: the budget does not limit it, it waits for the device behind every
interactive request, its progress and Cancel show in ``follow(key)`` on whichever visit to the page,
and its result stays in the session until the page starts another request under ``key`` (refused
while the job computes: cancel it first). A page whose action is always big may pass ``job=True``.
So a page needs nothing more than ``run_safely(lambda: start(key, ...))`` and ``follow(key, what)``.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Hashable, Mapping
from contextlib import nullcontext
from pathlib import Path
from typing import Any

import streamlit as st

from hct.data import DataReport, check_data, parse_size
from hct.data import generate_phantom as write_phantom
from hct.data.sets.roots import data_roots
from hct.errors import HCTError
from hct.runtime.devices import disable_tf32
from hct.runtime.serving import BudgetExceeded, DeviceQueue, Task, check_budget, compute_slots

from app import loaders

TASKS = "hct_tasks"
REFUSED = "hct_refused"  # requests over the budget, by key: (request, message), offered as a job


@st.cache_resource(show_spinner=False)
def queue() -> DeviceQueue:
    """The process's device queue, created once; TF32 is switched off for the process with it, before any
    computation, so no session's computation ever sees the flags change (:func:`hct.runtime.devices.disable_tf32`)."""
    disable_tf32()
    return DeviceQueue(compute_slots())


def task(key: str) -> Task | None:
    """This session's task under ``key``, if any."""
    return st.session_state.get(TASKS, {}).get(key)


def start(
    key: str,
    work: Callable[[Task], Any],
    *,
    images: int,
    size: str | None,
    models: int = 1,
    inputs: Hashable = None,
    job: bool = False,
) -> Task:
    """Run ``work(task)`` as this session's task under ``key``, cancelling (and dropping) the task there.

    With ``inputs``, a task under ``key`` with equal inputs that is queued, running or done is kept instead.
    ``images`` x ``size`` x ``models`` is the size of the request: checked against the compute budget,
    unless ``job`` (a background job; see the module's docstring) or ``size`` is None (work that runs no
    model, such as a data check). A job still computing under ``key`` is never dropped for another
    request: that raises :class:`HCTError` until it is cancelled.
    """
    tasks = st.session_state.setdefault(TASKS, {})
    refused = st.session_state.setdefault(REFUSED, {})
    refused.pop(key, None)
    old = tasks.get(key)
    if inputs is not None and old is not None and old.inputs == inputs and old.state in ("queued", "running", "done"):
        return old
    if old is not None and old.background and not old.finished:
        raise HCTError(f"a queued job is still computing here ({old.note}); wait for it, or cancel it first.")
    tasks.pop(key, None)
    if old is not None:
        old.cancel()
    if not job and size is not None:
        try:
            check_budget(images, parse_size(size), models)
        except BudgetExceeded as err:
            refused[key] = (dict(work=work, images=images, size=size, models=models, inputs=inputs), str(err))
            raise
    new = Task(work, inputs, background=job)
    if size is not None:
        new.step(f"{images} image{'s' * (images != 1)} at {size}" + (f", {models} models" if models > 1 else ""))
    tasks[key] = new
    return new.start()


def refusal(key: str) -> str | None:
    """Why this session's last request under ``key`` was refused (over the budget), until another starts."""
    entry = st.session_state.get(REFUSED, {}).get(key)
    return entry[1] if entry else None


def run_as_job(key: str) -> Task:
    """Run the request refused under ``key`` as a background job (``start(..., job=True)``)."""
    request, _ = st.session_state[REFUSED][key]
    return start(key, **request, job=True)


def check_data_set(key: str, source: Path, fmt: str, again: bool = False) -> Task:
    """Check the data set at ``source`` (:func:`hct.data.check_data` in ``fmt``, confined to the data
    roots) as this session's task under ``key``, with progress and cancel; its result is the
    :class:`~hct.data.DataReport`. An equal check under way or done is kept, unless ``again``."""

    def work(task: Task) -> DataReport:
        task.step("reading the DICOM files")
        return check_data(source, fmt, roots=data_roots(), progress=task.progress, cancel=task.cancelled)

    old = st.session_state.get(TASKS, {}).pop(key, None) if again else None
    if old is not None:
        old.cancel()
    return start(key, work, images=0, size=None, inputs=(fmt, str(source)))


_GENERATING = threading.Lock()


@st.cache_resource(show_spinner=False)
def _generations() -> dict[str, Task]:
    """The phantom generations of the process, by output folder."""
    return {}


def phantom_generation(out_dir: Path) -> Task | None:
    """The generation of ``out_dir`` under way, whichever session started it."""
    task = _generations().get(str(out_dir))
    return task if task is not None and not task.finished else None


def generate_phantom(out_dir: Path, counts: Mapping[str, int], size: tuple[int, int]) -> Task:
    """Write the phantom data set (:func:`hct.data.generate_phantom`: ``counts`` images per split at
    ``size``) to ``out_dir`` as this session's queued job under ``"phantom"``, with progress and cancel.
    A generation of ``out_dir`` under way in any session is refused. Without a GPU it takes a slot of
    the device queue (the CPU is the device), behind interactive requests."""

    def work(task: Task) -> int:
        task.step(f"writing {sum(counts.values()):,} phantom images at {size[0]}x{size[1]}")
        on_cpu = loaders.device() == "cpu"
        with queue().slot(cancel=task.cancelled, on_wait=task.queued, background=True) if on_cpu else nullcontext():
            return len(write_phantom(dict(counts), out_dir, size=size, progress=task.progress, cancel=task.cancelled))

    with _GENERATING:
        if phantom_generation(out_dir) is not None:
            raise HCTError(f"{out_dir} is being generated already (by another session); wait for it to finish.")
        task = start("phantom", work, images=sum(counts.values()), size=f"{size[0]}x{size[1]}", job=True)
        _generations()[str(out_dir)] = task
    return task
