"""The ERF engine under torchrun: two CPU processes share the images out and rank 0 reduces them in
image order, so the Table 1 maps equal one process's bit for bit.

Both runs use one thread per process and ``MKL_CBWR=AUTO,STRICT``: without it, MKL's matrix products
(HCT's attention) round differently depending on the memory alignment of their operands, and the
same image's gradient then differs in its last bits from one process layout to another.
"""

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from hct.checkpoints import save_checkpoint
from hct.distributed import DistContext, round_ranges
from hct.models import create_model

REPO = Path(__file__).resolve().parents[1]
ENV = {**os.environ, "OMP_NUM_THREADS": "1", "MKL_CBWR": "AUTO,STRICT", "PYTHONPATH": str(REPO)}


def test_round_ranges_cut_items_in_order():
    assert round_ranges(0, 5, 2) == [range(0, 3), range(3, 5)]
    assert round_ranges(4, 5, 3) == [range(4, 5), range(5, 5), range(5, 5)]
    assert DistContext(rank=1, world=3).shard(list("abcdefg")) == ["b", "e"]


def _free_port():
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.mark.slow
def test_table1_under_torchrun_equals_one_process(tmp_path):
    rows, cols = np.mgrid[:200, :160]
    for i in range(6):
        centre = 0 if i % 2 else 159
        pixels = np.where((rows - 100) ** 2 + (cols - centre) ** 2 < 110 ** 2, 30000 + 97 * i, 400).astype(np.uint16)
        Image.fromarray(pixels).save(tmp_path / f"img{i}.png")
    checkpoints = []
    for name in ("gmic", "hct_performer_relu"):  # the same weights in every process
        torch.manual_seed(0)
        save_checkpoint(create_model(name), tmp_path / f"{name}.safetensors", input_size=(128, 96))
        checkpoints.append(str(tmp_path / f"{name}.safetensors"))
    args = ["table1", "--models", *checkpoints, "--images", str(tmp_path), "--n", "3",
            "--size", "128x96", "--no-cache"]
    single = subprocess.run([sys.executable, "-m", "hct", *args, "--out", str(tmp_path / "one")], cwd=REPO, env=ENV,
                            capture_output=True, text=True, timeout=600)
    assert single.returncode == 0, single.stderr[-3000:]
    ranks = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--nnodes", "1", "--nproc_per_node", "2",
                            "--master_addr", "127.0.0.1", "--master_port", str(_free_port()),
                            "-m", "hct", "--", *args, "--out", str(tmp_path / "two")],  # "--": torchrun would take --n
                           cwd=REPO, env=ENV, capture_output=True, text=True, timeout=600)
    assert ranks.returncode == 0, ranks.stderr[-3000:]
    maps = sorted(p.name for p in (tmp_path / "one").glob("erf_*.npz"))
    assert len(maps) == 6
    for name in maps:
        one, two = np.load(tmp_path / "one" / name), np.load(tmp_path / "two" / name)
        for key in ("map", "image_curves_over_columns", "image_curves_over_rows", "mask"):
            assert np.array_equal(one[key], two[key]), (name, key)
    assert (tmp_path / "one" / "table1_images.csv").read_text() == (tmp_path / "two" / "table1_images.csv").read_text()
