"""Fuzzing: hostile DICOMs, pictures, model cards and training configs each read correctly or are refused with
the project's own error class and a one-line message, within a time bound (``tests/fuzz_inputs.py``).

The default profile runs every listed case plus a few seeded random ones; the long profile,
``HCT_FUZZ_SEEDS=20 pytest -m fuzz_long tests/test_fuzz.py``, runs that many more seeds of 200 random
DICOM cuts and flips and of the pictures.
"""

from __future__ import annotations

import json
import os

import pytest
import torch

from hct.models import create_model
from hct.models.checkpoints import save_checkpoint
from tests import fuzz_inputs as fuzz

pytestmark = pytest.mark.filterwarnings("ignore::UserWarning", "ignore::DeprecationWarning")


def _assert_no_crash(verdicts: list[fuzz.Verdict]) -> None:
    crashes = [f"{v.case}: {v.detail}" for v in verdicts if v.outcome == "crash"]
    assert not crashes, f"{len(crashes)} of {len(verdicts)} inputs crashed:\n" + "\n".join(crashes)


def test_dicom_header_values_read_or_refused():
    verdicts = [fuzz.judge("dicom", case, lambda d=data: fuzz.use_image(d)) for case, data in fuzz.dicom_cases(0, 16)]
    _assert_no_crash(verdicts)
    assert {v.outcome for v in verdicts} == {"read", "refused"}


def test_pictures_of_odd_dtypes_and_values_read_or_refused():
    verdicts = [fuzz.judge("picture", case, lambda d=data: fuzz.use_image(d)) for case, data in fuzz.picture_cases(0)]
    _assert_no_crash(verdicts)
    assert {v.outcome for v in verdicts} == {"read", "refused"}


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory):
    folder = tmp_path_factory.mktemp("card")
    torch.manual_seed(0)
    card = save_checkpoint(
        create_model("gmic"),
        folder / "gmic.safetensors",
        input_size=(64, 48),
        stage="image",
        metrics={"test_auc": 0.5},
        preprocessing={"mode": "canonical", "clear_background": True},
    )
    return folder / "gmic.json", json.loads(card.to_json())


def test_model_cards_with_each_field_changed_read_or_refused(checkpoint):
    card_path, card = checkpoint
    verdicts = []
    for case, changed in fuzz.card_cases(card):
        card_path.write_text(json.dumps(changed))
        verdicts.append(fuzz.judge("card", case, lambda: fuzz.use_card(card_path)))
    _assert_no_crash(verdicts)
    assert {v.outcome for v in verdicts} == {"read", "refused"}


@pytest.fixture(scope="module")
def config(tmp_path_factory):
    return fuzz.valid_config(tmp_path_factory.mktemp("config"))


def test_training_configs_out_of_range_are_refused_before_any_work(config):
    verdicts = [
        fuzz.judge("config", case, lambda c=changed: fuzz.use_config(c)) for case, changed in fuzz.config_cases(config)
    ]
    _assert_no_crash(verdicts)
    assert {v.outcome for v in verdicts} == {"read", "refused"}


@pytest.mark.fuzz_long
@pytest.mark.skipif(
    not os.environ.get("HCT_FUZZ_SEEDS"), reason="the long profile: HCT_FUZZ_SEEDS=20 pytest -m fuzz_long"
)
@pytest.mark.parametrize("seed", range(int(os.environ.get("HCT_FUZZ_SEEDS") or 0)))
def test_many_seeds_of_random_dicoms_and_pictures(seed):
    verdicts = [
        fuzz.judge("dicom", case, lambda d=data: fuzz.use_image(d)) for case, data in fuzz.dicom_cases(seed + 1, 200)
    ]
    verdicts += [
        fuzz.judge("picture", case, lambda d=data: fuzz.use_image(d)) for case, data in fuzz.picture_cases(seed + 1)
    ]
    _assert_no_crash(verdicts)
