"""Serving the library's heavy work to many users: each computation a :class:`Task` in a thread of its own.

A caller (the app's page, a notebook) starts a task and polls it: its state, progress and result. The
work gets the task itself and passes ``task.progress`` and ``task.cancelled`` to the library's
``progress`` and ``cancel`` arguments, so a cancel request stops it at the next image.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Hashable
from typing import Any

from hct.errors import ComputationCancelled

class Task:
    """``work(task)`` run in a daemon thread: state, progress, result or error, and a cancel request.

    ``state`` is ``running``, then ``done`` (``result`` holds the value), ``failed`` or ``cancelled``
    (the work raised :class:`ComputationCancelled`); ``error`` holds the exception of either. ``inputs``
    tags what the task computes, so a caller can tell whether it still matches what is asked.
    """

    def __init__(self, work: Callable[[Task], Any], inputs: Hashable = None) -> None:
        self.work, self.inputs = work, inputs
        self.state = "running"
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

    def step(self, note: str) -> None:
        """Start a new step of the work, described by ``note`` (shown with its progress)."""
        self.note, self.steps = note, (0, 0)
