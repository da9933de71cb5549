"""hct.serving: tasks run in threads of their own, with progress, result, failure and cancel."""

import threading

import pytest
import torch
from torch import nn

from hct.errors import ComputationCancelled, ConfigError
from hct.explain import compute_erf
from hct.serving import Task


def test_a_task_runs_its_work_in_another_thread_and_keeps_the_result():
    caller = threading.get_ident()
    task = Task(lambda t: threading.get_ident(), inputs=("a", 1)).start()
    assert task.wait(10) and task.finished
    assert task.state == "done" and task.result != caller and task.inputs == ("a", 1)


def test_a_failure_is_kept_for_the_caller():
    def work(task):
        raise ConfigError("bad input")

    task = Task(work).start()
    assert task.wait(10)
    assert task.state == "failed" and isinstance(task.error, ConfigError) and task.result is None


class Gate(nn.Module):
    """A one-layer network whose forward pass waits for ``release`` after the first image."""

    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(1, 1, 3, padding=1)
        self.calls, self.started, self.release = 0, threading.Event(), threading.Event()

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        self.calls += 1
        if self.calls == 2:
            self.started.set()
            self.release.wait(10)
        return self.conv(x)


def test_cancel_stops_an_erf_between_images_through_the_library_callback():
    model = Gate()
    images = torch.rand(6, 1, 16, 16)
    task = Task(lambda t: compute_erf(model, images, progress=t.progress, cancel=t.cancelled)).start()
    assert model.started.wait(10)
    assert task.steps == (1, 6) and task.state == "running"
    task.cancel()
    model.release.set()
    assert task.wait(10)
    assert task.state == "cancelled" and isinstance(task.error, ComputationCancelled) and task.result is None
    assert model.calls == 2


def test_check_raises_once_cancel_was_asked():
    task = Task(lambda t: None)
    task.step("predictions")
    task.check()
    task.cancel()
    with pytest.raises(ComputationCancelled, match="predictions was cancelled"):
        task.check()
