"""The app's loaders and compute layer outside a browser: the model cache and its registry, the model
choices, the default size from the card, the result caches' limits, the device queue."""

import shutil

import pytest
import torch
from streamlit.testing.v1 import AppTest

from hct.models.card import CHECKPOINT_DIR, find_checkpoints

from app import compute, loaders, state, tasks


@pytest.fixture()
def jobs(monkeypatch, tmp_path):
    monkeypatch.setenv("HCT_APP_JOB_STORE", str(tmp_path / "jobs.sqlite"))


@pytest.fixture()
def fake_models(monkeypatch, jobs):
    """Loading gives a tiny network at once; the model cache starts and ends empty."""
    loads = []

    def load_model(spec, device="cpu"):
        loads.append(spec)
        return torch.nn.Linear(1, 1), None

    monkeypatch.setattr(loaders, "load_model", load_model)
    loaders.model.clear()
    yield loads
    loaders.model.clear()


def test_the_model_cache_past_its_limit_drops_the_oldest_and_the_registry_follows(fake_models):
    keys = [c.key for c in loaders.model_choices()][: loaders.MODEL_CACHE_SIZE + 1]
    assert len(keys) == loaders.MODEL_CACHE_SIZE + 1
    for key in keys:
        loaders.model(key)
    held = loaders.loaded_models()
    assert list(held) == keys[1:] and set(held.values()) == {"cpu"}  # the first one was evicted
    loaders.model(keys[-1])
    assert len(fake_models) == len(keys)  # a held model is not loaded again
    loaders.unload_model(keys[-1])
    assert keys[-1] not in loaders.loaded_models()


def test_a_loaded_model_is_the_library_loader_s_read_only_model(jobs):
    key = next(c.key for c in loaders.model_choices() if c.key == "init:gmic")
    loaded = loaders.model(key)
    assert loaded.card is None and not loaded.model.training
    assert not any(p.requires_grad for p in loaded.model.parameters())
    loaders.unload_model(key)


def test_model_choices_are_read_again_only_when_a_card_changes(monkeypatch, tmp_path, jobs):
    folder = tmp_path / "checkpoints"
    folder.mkdir()
    for suffix in (".safetensors", ".json"):
        shutil.copy(CHECKPOINT_DIR / f"gmic{suffix}", folder / f"gmic{suffix}")
    monkeypatch.setattr(loaders, "find_checkpoints", lambda: find_checkpoints(folder))
    reads = []
    read_card = loaders.read_card
    monkeypatch.setattr(loaders, "read_card", lambda path: reads.append(path) or read_card(path))

    first = loaders.model_choices()
    assert [c.key for c in first if c.trained] == ["ckpt:gmic"] and len(reads) == 1
    assert loaders.model_choices() == first and len(reads) == 1  # cached
    for suffix in (".safetensors", ".json"):
        shutil.copy(CHECKPOINT_DIR / f"gmic{suffix}", folder / f"second{suffix}")
    assert [c.key for c in loaders.model_choices() if c.trained] == ["ckpt:gmic", "ckpt:second"]


def test_the_default_size_is_the_card_s_within_the_offered_sizes(monkeypatch):
    monkeypatch.delenv("HCT_APP_MAX_SIZE", raising=False)
    assert state.card_size((832, 640)) == "832x640"
    assert state.card_size((1000, 700)) == "832x640"  # not offered: the largest offered within it
    assert state.card_size((100, 80)) == "416x320"  # smaller than all: the smallest offered
    monkeypatch.setenv("HCT_APP_MAX_SIZE", "128x96")
    assert state.card_size((1664, 1280)) == "128x96"


def test_a_result_cache_past_its_limit_drops_the_least_recently_used(monkeypatch):
    calls = []
    monkeypatch.setattr(compute, "read_predictions", lambda path: calls.append(path) or path)
    compute._read_predictions.clear()
    entries, _ = compute.CACHE_LIMITS["shipped"]
    paths = [f"predictions{i}.csv" for i in range(entries + 1)]
    for path in paths:
        compute._read_predictions(path, 0)
    compute._read_predictions(paths[-1], 0)  # held
    assert len(calls) == entries + 1
    compute._read_predictions(paths[0], 0)  # dropped when the cache passed its limit: computed again
    assert len(calls) == entries + 2
    compute._read_predictions.clear()


def test_the_app_s_device_queue_fixes_tf32_off_before_any_computation(monkeypatch):
    before = torch.backends.cudnn.allow_tf32, torch.backends.cuda.matmul.allow_tf32
    torch.backends.cudnn.allow_tf32 = torch.backends.cuda.matmul.allow_tf32 = True
    monkeypatch.setenv("HCT_COMPUTE_SLOTS", "2")
    tasks.queue.clear()
    try:
        assert tasks.queue().slots == 2
        assert not torch.backends.cudnn.allow_tf32 and not torch.backends.cuda.matmul.allow_tf32
    finally:
        tasks.queue.clear()
        torch.backends.cudnn.allow_tf32, torch.backends.cuda.matmul.allow_tf32 = before


def _mib(text: str) -> int:
    return int(text.removesuffix("MiB")) * 2**20


@pytest.mark.parametrize("name", sorted(loaders.IMAGE_CACHE_LIMITS))
def test_an_image_cache_past_its_size_limit_drops_the_least_recently_used(monkeypatch, name):
    """Four entries of a third of the cache's size each: the first is dropped, and computed again."""
    from types import SimpleNamespace

    import numpy as np

    entries, size = loaders.IMAGE_CACHE_LIMITS[name]
    blob = np.zeros((1000, _mib(size) // 3000 + 1), np.uint8)
    computed = []
    monkeypatch.setattr(loaders, "to_display", lambda pixels: pixels)  # kept at its size, whatever its shape
    monkeypatch.setattr(
        loaders, "read_image", lambda item: computed.append(item.key) or SimpleNamespace(meta=blob, pixels=blob)
    )
    monkeypatch.setattr(loaders, "preprocess", lambda image, size, mode: blob)
    cached = {
        "meta": loaders.image_meta,
        "display": loaders.display_pixels,
        "preprocessed": lambda item: loaders.preprocessed(item, "64x48"),
    }[name]
    cache = getattr(loaders, f"_{name}")
    cache.clear()
    items = [state.ImageItem(f"fill-{i}", f"{i}.png", None) for i in range(4)]
    for item in items:
        cached(item)
    cached(items[-1])
    assert computed == [i.key for i in items]  # the last one is held
    cached(items[0])
    assert computed[-1] == items[0].key and len(computed) == 5  # the first was dropped
    cache.clear()


def test_an_image_cache_past_its_entry_limit_drops_the_least_recently_used(monkeypatch):
    from types import SimpleNamespace

    import numpy as np

    computed = []
    monkeypatch.setattr(
        loaders, "read_image", lambda item: computed.append(item.key) or SimpleNamespace(pixels=np.ones((4, 4)))
    )
    loaders._display.clear()
    entries, _ = loaders.IMAGE_CACHE_LIMITS["display"]
    items = [state.ImageItem(f"entry-{i}", f"{i}.png", None) for i in range(entries + 1)]
    for item in items:
        loaders.display_pixels(item)
    loaders.display_pixels(items[0])
    assert len(computed) == entries + 2 and computed[-1] == items[0].key
    loaders._display.clear()


def test_running_out_of_gpu_memory_is_a_clear_message_not_a_traceback():
    def page():
        from hct.runtime.devices import OutOfMemoryError

        from app import widgets

        def work():
            raise OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB")

        widgets.run_safely(work, "The ERF")

    at = AppTest.from_function(page).run(timeout=60)
    assert not at.exception and "The ERF ran out of GPU memory: choose a smaller resolution" in at.error[0].value
