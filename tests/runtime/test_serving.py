"""hct.runtime.serving: tasks in threads of their own (progress, result, failure, cancel), the device queue
(positions, bounded concurrency, cancel while queued), the compute budget; TF32 across threads."""

import threading
import time

import pytest
import torch
from torch import nn

from hct.errors import ComputationCancelled, ConfigError
from hct.explain import ERFEngine, compute_erf
from hct.runtime.serving import BudgetExceeded, DeviceQueue, Task, check_budget, compute_budget, compute_slots


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
    task = Task(lambda t: compute_erf(model, images, engine=ERFEngine(progress=t.progress, cancel=t.cancelled))).start()
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


def _waiter(
    queue: DeviceQueue,
    positions: list,
    admitted: threading.Event,
    release: threading.Event,
    cancel=None,
    background: bool = False,
) -> threading.Thread:
    def run():
        try:
            with queue.slot(cancel=cancel, on_wait=positions.append, background=background):
                admitted.set()
                release.wait(10)
        except ComputationCancelled:
            positions.append("cancelled")

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    return thread


def _until(condition, timeout: float = 10) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.01)


def test_waiting_callers_learn_their_position_first_come_first_served():
    queue = DeviceQueue(slots=1, poll_s=0.01)
    events = [(threading.Event(), threading.Event()) for _ in range(3)]
    positions = [[], [], []]
    threads = [_waiter(queue, positions[0], *events[0])]
    assert events[0][0].wait(10) and positions[0] == [0]
    for i in (1, 2):
        threads.append(_waiter(queue, positions[i], *events[i]))
        _until(lambda i=i: queue.waiting == i)
    assert positions[1] == [1] and positions[2] == [2] and queue.running == 1
    events[0][1].set()  # the first one ends: the second is admitted, the third moves up
    assert events[1][0].wait(10)
    _until(lambda: positions[2] == [2, 1])
    assert not events[2][0].is_set()
    events[1][1].set()
    events[2][1].set()
    for thread in threads:
        thread.join(10)
    assert positions[2] == [2, 1, 0] and queue.running == queue.waiting == 0


def test_a_background_job_waits_behind_interactive_requests_that_came_later():
    queue = DeviceQueue(slots=1, poll_s=0.01)
    events = [(threading.Event(), threading.Event()) for _ in range(3)]
    positions = [[], [], []]
    threads = [_waiter(queue, positions[0], *events[0])]
    assert events[0][0].wait(10)
    threads.append(_waiter(queue, positions[1], *events[1], background=True))
    _until(lambda: queue.waiting == 1)
    threads.append(_waiter(queue, positions[2], *events[2]))
    _until(lambda: positions[1] == [1, 2])  # the interactive request went ahead of the job
    assert positions[2] == [1]
    events[0][1].set()
    assert events[2][0].wait(10) and not events[1][0].is_set()
    _until(lambda: positions[1] == [1, 2, 1])
    events[2][1].set()
    assert events[1][0].wait(10)
    events[1][1].set()
    for thread in threads:
        thread.join(10)
    assert queue.running == queue.waiting == 0


def test_no_more_than_slots_computations_run_at_once():
    queue, lock, active, peak = DeviceQueue(slots=2, poll_s=0.01), threading.Lock(), [0], [0]

    def work():
        with queue.slot():
            with lock:
                active[0] += 1
                peak[0] = max(peak[0], active[0])
            time.sleep(0.05)
            with lock:
                active[0] -= 1

    threads = [threading.Thread(target=work) for _ in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(10)
    assert peak[0] == 2 and queue.running == queue.waiting == 0


def test_cancel_while_queued_leaves_the_queue():
    queue = DeviceQueue(slots=1, poll_s=0.01)
    holder = (threading.Event(), threading.Event())
    first = _waiter(queue, [], *holder)
    assert holder[0].wait(10)
    flag, behind = threading.Event(), ([], threading.Event(), threading.Event())
    cancelled = _waiter(queue, (seen := []), threading.Event(), threading.Event(), cancel=flag.is_set)
    _until(lambda: queue.waiting == 1)
    last = _waiter(queue, *behind)
    _until(lambda: behind[0] == [2])
    flag.set()
    cancelled.join(10)
    assert seen == [1, "cancelled"]
    _until(lambda: behind[0] == [2, 1])  # the one behind moves up
    holder[1].set()
    assert behind[1].wait(10)
    behind[2].set()
    for thread in (first, last):
        thread.join(10)
    assert queue.running == queue.waiting == 0


def test_a_task_shows_its_queue_position_and_can_be_cancelled_there():
    queue = DeviceQueue(slots=1, poll_s=0.01)
    holder = (threading.Event(), threading.Event())
    _waiter(queue, [], *holder)
    assert holder[0].wait(10)

    def work(task):
        with queue.slot(cancel=task.cancelled, on_wait=task.queued):
            return "computed"

    task = Task(work).start()
    _until(lambda: task.state == "queued")
    assert task.position == 1
    task.cancel()
    assert task.wait(10) and task.state == "cancelled" and queue.waiting == 0
    again = Task(work).start()
    _until(lambda: again.state == "queued")
    holder[1].set()
    assert again.wait(10) and again.state == "done" and again.result == "computed" and again.position == 0


def test_the_default_budget_admits_several_times_the_app_defaults(monkeypatch):
    monkeypatch.delenv("HCT_COMPUTE_BUDGET", raising=False)
    check_budget(4 * 8, (1664, 1280), 2)  # four times the ERF explorer's defaults
    with pytest.raises(BudgetExceeded) as refused:
        check_budget(8, (3328, 2560), 3)
    message = str(refused.value)
    assert "8 images x 3328x2560 pixels x 3 models = 204 megapixels" in message
    assert "budget of 150 (HCT_COMPUTE_BUDGET)" in message and "lower N to 5 or fewer" in message


def test_the_budget_and_the_slots_come_from_the_environment(monkeypatch):
    monkeypatch.setenv("HCT_COMPUTE_BUDGET", "5")
    monkeypatch.setenv("HCT_COMPUTE_SLOTS", "3")
    assert compute_budget() == 5 and compute_slots() == 3
    with pytest.raises(BudgetExceeded, match="choose a smaller resolution"):
        check_budget(1, (3328, 2560))  # one image alone is over
    monkeypatch.setenv("HCT_COMPUTE_SLOTS", "two")
    with pytest.raises(ConfigError, match="HCT_COMPUTE_SLOTS must be a positive int, got 'two'"):
        compute_slots()


@pytest.fixture()
def tf32_on():
    """TF32 on (cuDNN's default in PyTorch) for the test; the flags as they were afterwards."""
    before = torch.backends.cudnn.allow_tf32, torch.backends.cuda.matmul.allow_tf32
    torch.backends.cudnn.allow_tf32 = torch.backends.cuda.matmul.allow_tf32 = True
    yield
    torch.backends.cudnn.allow_tf32, torch.backends.cuda.matmul.allow_tf32 = before


def test_one_thread_s_erf_never_changes_another_s_tf32_mid_run(tf32_on):
    """Thread A enters the ERF engine, then B; A ends while B runs. B's every image sees full float32."""
    seen = {"a": [], "b": []}
    a_in, b_in, a_done = threading.Event(), threading.Event(), threading.Event()

    def features(name: str, conv: nn.Module):
        def forward(x):
            seen[name].append((torch.backends.cudnn.allow_tf32, torch.backends.cuda.matmul.allow_tf32))
            if name == "a":
                a_in.set()
                b_in.wait(10)
            elif len(seen["b"]) == 1:
                b_in.set()
                a_done.wait(10)
            return conv(x)

        return forward

    def run(name: str, n: int) -> None:
        conv = nn.Conv2d(1, 1, 3, padding=1)
        compute_erf(conv, torch.rand(n, 1, 8, 8), feature_fn=features(name, conv))
        if name == "a":
            a_done.set()

    a = threading.Thread(target=run, args=("a", 1))
    a.start()
    assert a_in.wait(10)
    b = threading.Thread(target=run, args=("b", 2))
    b.start()
    a.join(10)
    b.join(10)
    assert seen["a"] == [(False, False)] and seen["b"] == [(False, False), (False, False)]
    assert not torch.backends.cudnn.allow_tf32 and not torch.backends.cuda.matmul.allow_tf32
