"""Serving the library's heavy work to many users of one process (the app's sessions are its threads).

- :class:`Task`: one computation in a thread of its own. A caller (the app's page, a notebook) starts
  it and polls its state, queue position, progress and result. The work gets the task itself and
  passes ``task.progress`` and ``task.cancelled`` to the library's ``progress`` and ``cancel``
  arguments, so a cancel request stops it at the next image.
- :class:`DeviceQueue`: at most ``slots`` heavy computations on the device at once, first come first
  served, interactive requests ahead of background jobs; a waiting caller learns its position and
  can cancel while it waits.
- :func:`check_budget`: a request's size, images x pixels x models, against the compute budget. A
  request over it runs only as a background job (a :class:`Task` with ``background=True``), which
  the budget does not limit.

Configuration (environment variables, read by :func:`compute_slots` and :func:`compute_budget`):

- ``HCT_COMPUTE_SLOTS``: heavy computations run at once (default 1: one on the GPU the app uses, or
  one on the CPU). Raise it on a GPU with memory to spare.
- ``HCT_COMPUTE_BUDGET``: the largest request in megapixels, images x pixels x models (default
  150, about 4x the app's defaults: 8 images x 1664x1280 x 2 models = 34 megapixels).
"""

from __future__ import annotations

import contextlib
import os
import threading
from collections.abc import Callable, Hashable, Iterator
from typing import Any

from hct.errors import ComputationCancelled, ConfigError

DEFAULT_BUDGET_MPX = 150.0


class BudgetExceeded(ConfigError):
    """A request is larger than the compute budget; the message says what to lower."""


def _env_number(name: str, default: float, kind: type) -> float:
    text = os.environ.get(name, "").strip()
    if not text:
        return default
    try:
        value = kind(text)
    except ValueError:
        value = 0
    if value <= 0:
        raise ConfigError(f"{name} must be a positive {kind.__name__}, got {text!r}")
    return value


def compute_slots() -> int:
    """Heavy computations run at once: ``HCT_COMPUTE_SLOTS``, default 1."""
    return int(_env_number("HCT_COMPUTE_SLOTS", 1, int))


def compute_budget() -> float:
    """The largest request in megapixels (images x pixels x models): ``HCT_COMPUTE_BUDGET``, default 150."""
    return _env_number("HCT_COMPUTE_BUDGET", DEFAULT_BUDGET_MPX, float)


def check_budget(images: int, size: tuple[int, int], models: int = 1, budget_mpx: float | None = None) -> None:
    """Raise :class:`BudgetExceeded` when ``images`` x ``size`` pixels x ``models`` is over the budget
    (megapixels; default :func:`compute_budget`), with a message that says what to lower."""
    budget = compute_budget() if budget_mpx is None else budget_mpx
    per_image = size[0] * size[1] * models / 1e6
    if images * per_image <= budget:
        return
    fits = int(budget // per_image)
    lower = f"lower N to {fits} or fewer, choose a smaller resolution" if fits else "choose a smaller resolution"
    raise BudgetExceeded(
        f"this request is {images} image{'s' * (images != 1)} x {size[0]}x{size[1]} pixels x {models} "
        f"model{'s' * (models != 1)} = {images * per_image:.0f} megapixels, over the server's compute budget of "
        f"{budget:.0f} (HCT_COMPUTE_BUDGET): {lower}{' or compare fewer models' if models > 1 else ''}. "
        "The command line (python -m hct erf / predict) has no budget."
    )


class DeviceQueue:
    """At most ``slots`` computations at once, first come first served; thread-safe.

    ``with queue.slot(cancel=..., on_wait=..., background=...):`` waits for a free slot; a background
    caller (a big job) waits behind every interactive one, even one that came later. ``on_wait(k)`` is
    called with the caller's position (1: next) each time it changes while it waits, and with 0 once
    admitted; ``cancel()`` returning True while it waits leaves the queue and raises
    :class:`ComputationCancelled`. A thread holding a slot must not ask for another.
    """

    def __init__(self, slots: int = 1, poll_s: float = 0.1) -> None:
        if slots < 1:
            raise ConfigError(f"a device queue needs at least one slot, got {slots}")
        self.slots, self.poll_s = slots, poll_s
        self._cond = threading.Condition()
        self._waiting: list[object] = []  # in order of arrival
        self._background: set[object] = set()
        self._running = 0

    @property
    def running(self) -> int:
        return self._running

    @property
    def waiting(self) -> int:
        return len(self._waiting)

    def _position(self, ticket: object) -> int:
        """Where ``ticket`` stands (1: next): interactive callers first, then background ones, each
        in order of arrival (the sort is stable)."""
        return sorted(self._waiting, key=lambda other: other in self._background).index(ticket) + 1

    @contextlib.contextmanager
    def slot(
        self,
        *,
        cancel: Callable[[], bool] | None = None,
        on_wait: Callable[[int], None] | None = None,
        background: bool = False,
    ) -> Iterator[None]:
        ticket = object()
        with self._cond:
            self._waiting.append(ticket)
            if background:
                self._background.add(ticket)
            try:
                self._wait_turn(ticket, cancel, on_wait or (lambda position: None))
            finally:
                self._waiting.remove(ticket)
                self._background.discard(ticket)
                self._cond.notify_all()
            self._running += 1
        try:
            yield
        finally:
            with self._cond:
                self._running -= 1
                self._cond.notify_all()

    def _wait_turn(self, ticket: object, cancel: Callable[[], bool] | None, on_wait: Callable[[int], None]) -> None:
        shown = None
        while True:
            position = self._position(ticket)
            if position == 1 and self._running < self.slots:
                on_wait(0)
                return
            if position != shown:
                on_wait(position)
                shown = position
            if cancel is not None and cancel():
                raise ComputationCancelled(f"cancelled while queued at position {position}")
            self._cond.wait(self.poll_s)


class Task:
    """``work(task)`` run in a daemon thread: state, progress, result or error, and a cancel request.

    ``state`` is ``running`` (or ``queued``, at ``position``, while it waits for a :class:`DeviceQueue`
    slot), then ``done`` (``result`` holds the value), ``failed`` or ``cancelled`` (the work raised
    :class:`ComputationCancelled`); ``error`` holds the exception of either. ``inputs`` tags what the
    task computes, so a caller can tell whether it still matches what is asked. A ``background`` task
    is a big job: it waits for the device behind every interactive request.
    """

    def __init__(self, work: Callable[[Task], Any], inputs: Hashable = None, background: bool = False) -> None:
        self.work, self.inputs, self.background = work, inputs, background
        self.state = "running"
        self.position = 0  # in the device queue while queued
        self.steps = (0, 0)  # (done, total) of the current step
        self.note = ""  # what the current step computes
        self.result: Any = None
        self.error: Exception | None = None
        self._cancel, self._finished = threading.Event(), threading.Event()
        self._thread = threading.Thread(target=self._run, name="hct-task", daemon=True)

    def start(self) -> Task:
        self._thread.start()
        return self

    def _run(self) -> None:
        try:
            self.result = self.work(self)
            self.state = "done"
        except ComputationCancelled as err:
            self.error, self.state = err, "cancelled"
        except Exception as err:  # noqa: BLE001 - the caller reads it from the task
            self.error, self.state = err, "failed"
        finally:
            self._finished.set()

    @property
    def finished(self) -> bool:
        return self._finished.is_set()

    def wait(self, timeout: float | None = None) -> bool:
        """Wait until the work has ended (at most ``timeout`` seconds); True when it has."""
        return self._finished.wait(timeout)

    def cancel(self) -> None:
        """Ask the work to stop at its next cancel check."""
        self._cancel.set()

    def cancelled(self) -> bool:
        """The ``cancel`` callback the library's long computations take: True once cancel was asked."""
        return self._cancel.is_set()

    def check(self) -> None:
        """Raise :class:`ComputationCancelled` once cancel was asked (for work that has no cancel argument)."""
        if self.cancelled():
            raise ComputationCancelled(f"{self.note or 'the computation'} was cancelled")

    def progress(self, done: int, total: int) -> None:
        """The ``progress`` callback the library's long computations take."""
        self.steps = (done, total)

    def queued(self, position: int) -> None:
        """The ``on_wait`` callback of :meth:`DeviceQueue.slot`: the task's queue position, 0 once admitted."""
        self.position = position
        self.state = "queued" if position else "running"

    def step(self, note: str) -> None:
        """Start a new step of the work, described by ``note`` (shown with its progress)."""
        self.note, self.steps = note, (0, 0)
