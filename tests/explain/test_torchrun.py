"""The ERF engine under torchrun: two CPU processes share the images out and rank 0 reduces them in
image order, so the Table 1 maps equal one process's bit for bit (see tests/torchrun.py)."""

import numpy as np
import pytest
import torch
from PIL import Image

from hct.models import create_model
from hct.models.checkpoints import save_checkpoint
from hct.runtime.distributed import DistContext, round_ranges
from tests.torchrun import hct, hct_torchrun


def test_round_ranges_cut_items_in_order():
    assert round_ranges(0, 5, 2) == [range(0, 3), range(3, 5)]
    assert round_ranges(4, 5, 3) == [range(4, 5), range(5, 5), range(5, 5)]
    assert DistContext(rank=1, world=3).shard(list("abcdefg")) == ["b", "e"]


@pytest.mark.slow
def test_table1_under_torchrun_equals_one_process(tmp_path):
    rows, cols = np.mgrid[:200, :160]
    for i in range(6):
        centre = 0 if i % 2 else 159
        pixels = np.where((rows - 100) ** 2 + (cols - centre) ** 2 < 110**2, 30000 + 97 * i, 400).astype(np.uint16)
        Image.fromarray(pixels).save(tmp_path / f"img{i}.png")
    checkpoints = []
    for name in ("gmic", "hct_performer_relu"):  # the same weights in every process
        torch.manual_seed(0)
        save_checkpoint(create_model(name), tmp_path / f"{name}.safetensors", input_size=(128, 96))
        checkpoints.append(str(tmp_path / f"{name}.safetensors"))
    args = ["table1", "--models", *checkpoints, "--images", str(tmp_path), "--n", "3", "--size", "128x96", "--no-cache"]
    single = hct(*args, "--out", str(tmp_path / "one"))
    assert single.returncode == 0, single.stderr[-3000:]
    ranks = hct_torchrun(*args, "--out", str(tmp_path / "two"))
    assert ranks.returncode == 0, ranks.stderr[-3000:]
    maps = sorted(p.name for p in (tmp_path / "one").glob("erf_*.npz"))
    assert len(maps) == 6
    for name in maps:
        one, two = np.load(tmp_path / "one" / name), np.load(tmp_path / "two" / name)
        for key in ("map", "image_curves_over_columns", "image_curves_over_rows", "mask"):
            assert np.array_equal(one[key], two[key]), (name, key)
    assert (tmp_path / "one" / "table1_images.csv").read_text() == (tmp_path / "two" / "table1_images.csv").read_text()
