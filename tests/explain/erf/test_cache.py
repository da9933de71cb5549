"""The on-disk cache of per-image gradients: a second run reads instead of computing, and any change
of model, position or stage computes afresh."""

import numpy as np
import pytest
import torch
from PIL import Image

import hct.data.image.cache
from hct.data import PreprocessedFiles
from hct.explain import ERFEngine, GradientCache, compute_erf
from hct.models import create_model


def _counting(model):
    calls = []
    forward = model.forward_stem  # every stage's path starts there
    model.forward_stem = lambda x: calls.append(len(x)) or forward(x)
    return model, calls


@pytest.fixture()
def model():
    torch.manual_seed(0)
    return _counting(create_model("gmic"))


def test_second_run_reads_every_image_from_the_cache(model, tmp_path):
    model, calls = model
    x = torch.randn(3, 1, 128, 96)
    engine = ERFEngine(cache=GradientCache(tmp_path))
    first = compute_erf(model, x, reduction="mean", engine=engine)
    assert sum(calls) == 3
    second = compute_erf(model, x, reduction="mean", engine=engine)
    assert sum(calls) == 3  # nothing back-propagated again
    assert np.array_equal(first.map, second.map) and np.array_equal(first.image_thumbnails, second.image_thumbnails)
    absolute = compute_erf(model, x, reduction="mean_abs", engine=engine)  # another reduction: same entries
    assert sum(calls) == 3 and absolute.map.min() >= 0


@pytest.mark.parametrize("change", ["position", "stage", "weights"])
def test_a_changed_model_position_or_stage_is_computed_afresh(model, tmp_path, change):
    model, calls = model
    x = torch.randn(1, 1, 128, 96)
    engine = ERFEngine(cache=GradientCache(tmp_path))
    compute_erf(model, x, engine=engine)
    kwargs = {"position": {"position": (0, 0)}, "stage": {"stage": 4}}.get(change, {})
    if change == "weights":
        with torch.no_grad():
            model.classifier.bias += 1  # any tensor of the state dict counts, even one outside the ERF
    compute_erf(model, x, engine=engine, **kwargs)
    assert sum(calls) == 2


def test_a_corrupt_entry_is_computed_again(model, tmp_path):
    model, calls = model
    x = torch.randn(1, 1, 128, 96)
    engine = ERFEngine(cache=GradientCache(tmp_path))
    first = compute_erf(model, x, engine=engine)
    for entry in tmp_path.rglob("*.npz"):
        entry.write_bytes(b"truncated")
    again = compute_erf(model, x, engine=engine)
    assert sum(calls) == 2 and np.array_equal(first.map, again.map)


def test_cached_files_are_not_even_read(model, tmp_path, monkeypatch):
    model, calls = model
    rows, cols = np.mgrid[:200, :160]
    paths = []
    for i in range(2):
        pixels = np.where((rows - 100) ** 2 + (cols - 20 * i) ** 2 < 90**2, 30000, 400).astype(np.uint16)
        Image.fromarray(pixels).save(tmp_path / f"{i}.png")
        paths.append(tmp_path / f"{i}.png")
    images = PreprocessedFiles(paths, (128, 96), mode="acquired")
    engine = ERFEngine(cache=GradientCache(tmp_path / "cache"))
    first = compute_erf(model, images, engine=engine)

    def refuse(path):
        raise AssertionError(f"{path} was read although its gradient is cached")

    monkeypatch.setattr(hct.data.image.cache, "read_mammogram", refuse)
    second = compute_erf(model, images, engine=engine)
    assert sum(calls) == 2 and np.array_equal(first.map, second.map) and np.array_equal(first.mask, second.mask)
