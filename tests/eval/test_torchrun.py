"""``python -m hct predict`` under torchrun: two CPU processes share the batches out and rank 0 writes the
table in record order, equal to one process's (same batches; see tests/torchrun.py)."""

import numpy as np
import pandas as pd
import pytest
import torch

from hct.data import generate_phantom
from hct.errors import EvaluationError
from hct.eval import predict
from hct.models import create_model
from hct.models.checkpoints import save_checkpoint
from hct.runtime.distributed import DistContext
from tests.torchrun import hct, hct_torchrun


def test_predict_with_a_one_rank_context_and_decoding_workers_equals_the_plain_call(tmp_path):
    records = generate_phantom(7, tmp_path / "phantom", size=(96, 64))
    torch.manual_seed(0)
    model = create_model("gmic").eval()
    plain = predict(model, records, size=(96, 64), batch_size=3)
    ahead = predict(model, records, size=(96, 64), batch_size=3, workers=2, context=DistContext())
    pd.testing.assert_frame_equal(plain, ahead)
    assert list(plain["image_id"]) == [r.image_id for r in records]


@pytest.mark.slow
def test_predict_under_torchrun_equals_one_process(tmp_path):
    generate_phantom(7, tmp_path / "phantom", size=(96, 64))  # 7 images, batch 2: 4 batches, 2 per rank
    torch.manual_seed(0)
    save_checkpoint(create_model("gmic"), tmp_path / "gmic.safetensors", input_size=(96, 64))
    args = [
        "predict",
        "--checkpoint",
        str(tmp_path / "gmic.safetensors"),
        "hct_performer_relu",
        "--data",
        str(tmp_path / "phantom"),
        "--size",
        "96x64",
        "--batch-size",
        "2",
        "--device",
        "cpu",
    ]
    single = hct(*args, "--out", str(tmp_path / "one.csv"))
    assert single.returncode == 0, single.stderr[-3000:]
    ranks = hct_torchrun(*args, "--out", str(tmp_path / "two.csv"))
    assert ranks.returncode == 0, ranks.stderr[-3000:]
    one, two = pd.read_csv(tmp_path / "one.csv"), pd.read_csv(tmp_path / "two.csv")
    assert len(one) == 14 and list(one["image_id"]) == list(two["image_id"])
    assert np.array_equal(one["probability"].to_numpy(), two["probability"].to_numpy())
    assert one.drop(columns="probability").equals(two.drop(columns="probability"))


@pytest.mark.parametrize(
    ("batch_size", "workers", "message"),
    [(0, 0, "batch_size must be at least 1, got 0"), (2, -1, "must be 0 or more, got -1")],
)
def test_bad_batching_is_a_clear_error_on_every_rank(tmp_path, batch_size, workers, message):
    records = generate_phantom(4, tmp_path / "phantom", size=(96, 64))
    with pytest.raises(EvaluationError, match=message):
        predict(
            create_model("gmic"),
            records,
            size=(96, 64),
            batch_size=batch_size,
            workers=workers,
            context=DistContext(rank=1, world=2),
        )
