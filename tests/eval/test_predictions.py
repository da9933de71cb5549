"""Predictions tables: validation, CSV/Parquet round trips and batched prediction with a tiny model."""

import numpy as np
import pandas as pd
import pytest
import torch
from torch import nn

import hct.data
from hct.data.records import ImageRecord
from hct.errors import EvaluationError
from hct.eval import (
    PREDICTION_COLUMNS,
    card_preprocessing,
    predict,
    predict_batches,
    read_predictions,
    write_predictions,
)
from hct.models.ref import ModelRef


def table():
    return pd.DataFrame(
        {
            "image_id": ["007", "008", "009"],
            "patient_id": ["p1", "p1", "p2"],
            "laterality": ["L", "R", "L"],
            "view": ["CC", "MLO", "CC"],
            "label": [1, 0, 0],
            "finding_types": ["mass;calcifications", "", ""],
            "finding_size": [123.5, np.nan, np.nan],
            "probability": [0.9, 0.2, 0.0],
            "model": "HCT",
            "checkpoint_sha256": "ab" * 32,
        }
    )


def test_csv_round_trip_keeps_ids_text_and_missing_sizes(tmp_path):
    path = write_predictions(table(), tmp_path / "p.csv")
    back = read_predictions(path)
    assert list(back.columns) == list(PREDICTION_COLUMNS)
    assert back["image_id"].tolist() == ["007", "008", "009"]
    assert back["finding_types"].tolist() == ["mass;calcifications", "", ""]
    assert back["finding_size"].iloc[0] == 123.5 and back["finding_size"].iloc[1:].isna().all()


def test_parquet_round_trip(tmp_path):
    back = read_predictions(write_predictions(table(), tmp_path / "p.parquet"))
    pd.testing.assert_frame_equal(back, read_predictions(write_predictions(table(), tmp_path / "p.csv")))


@pytest.mark.parametrize(
    "change, match",
    [
        (lambda df: df.drop(columns=["probability", "model"]), "lacks the column"),
        (lambda df: df.assign(probability=[0.5, np.nan, 0.1]), "NaN or outside"),
        (lambda df: df.assign(probability=[0.5, -0.1, 0.1]), "outside"),
        (lambda df: df.assign(label=[1, 2, 0]), "labels are not"),
        (lambda df: df.assign(image_id=["007", "007", "009"]), "more than once"),
    ],
)
def test_invalid_tables_raise(tmp_path, change, match):
    with pytest.raises(EvaluationError, match=match):
        write_predictions(change(table()), tmp_path / "p.csv")


def test_missing_file_raises(tmp_path):
    with pytest.raises(EvaluationError, match="does not exist"):
        read_predictions(tmp_path / "none.csv")


def tiny_model():
    torch.manual_seed(0)
    return nn.Sequential(nn.Conv2d(1, 4, 3), nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(4, 2))


def records(n):
    return [
        ImageRecord(
            image_id=f"i{i}",
            path=f"i{i}.png",
            label=i % 2,
            finding_types=("mass",) if i % 2 else (),
            finding_size=50.0 + i if i % 2 else None,
        )
        for i in range(n)
    ]


def test_predict_batches_softmax_order_and_progress():
    model = tiny_model().train()
    images = torch.rand(5, 1, 16, 12)
    recs = records(5)
    seen = []
    df = predict_batches(
        model,
        [(images[:2], recs[:2]), (images[2:], recs[2:])],
        ref=ModelRef.of("tiny"),
        total=5,
        progress=lambda done, total: seen.append((done, total)),
    )
    assert not model.training
    expected = torch.softmax(model(images), dim=1)[:, 1].detach().numpy()
    np.testing.assert_allclose(df["probability"], expected, rtol=1e-5)
    assert df["image_id"].tolist() == [r.image_id for r in recs] and seen == [(2, 5), (5, 5)]
    assert df["finding_size"].isna().tolist() == [True, False, True, False, True]
    assert df["finding_types"].tolist()[:2] == ["", "mass"] and (df["model"] == "tiny").all()


@pytest.fixture(scope="module")
def phantom_records(tmp_path_factory):
    folder = tmp_path_factory.mktemp("phantom")
    hct.data.generate_phantom(4, folder, size=(128, 96), seed=1, malignant_fraction=0.5)
    return hct.data.load_records(str(folder))


@pytest.mark.parametrize("mode, clear_background", [("canonical", True), ("acquired", False)])
def test_predict_preprocesses_as_asked(phantom_records, mode, clear_background):
    model = tiny_model()
    df = predict(
        model,
        phantom_records,
        size=(64, 48),
        mode=mode,
        clear_background=clear_background,
        batch_size=3,
        ref=ModelRef.of("tiny", checkpoint_sha256="cd" * 32),
    )
    images = torch.stack(
        [
            hct.data.preprocess(hct.data.read_mammogram(r.path), (64, 48), mode, clear_background).tensor
            for r in phantom_records
        ]
    )
    np.testing.assert_allclose(df["probability"], torch.softmax(model(images), 1)[:, 1].detach().numpy(), rtol=1e-5)
    other = predict(model, phantom_records, size=(64, 48), mode="acquired" if mode == "canonical" else "canonical")
    assert not np.allclose(df["probability"], other["probability"])  # the mode reaches the model
    write_predictions(df, "/dev/null")  # a valid table


def test_card_preprocessing_defaults_to_canonical_cleared():
    from hct.models.card import ModelCard

    assert card_preprocessing(None) == {"mode": "canonical", "clear_background": True}
    assert card_preprocessing(ModelCard("gmic")) == {"mode": "canonical", "clear_background": True}
    card = ModelCard("gmic", preprocessing={"mode": "acquired", "clear_background": False, "version": 2})
    assert card_preprocessing(card) == {"mode": "acquired", "clear_background": False}


def test_predict_rejects_non_binary_classifier():
    model = nn.Sequential(nn.Flatten(), nn.Linear(16, 3))
    with pytest.raises(EvaluationError, match="two outputs"):
        predict_batches(model, [(torch.rand(2, 1, 4, 4), records(2))])


def test_without_identity_keeps_patients_apart_and_their_ids_out():
    import pandas as pd

    from hct.eval.predictions import without_identity

    table = pd.DataFrame({"patient_id": ["PID-1", "PID-1", "PID-2"], "probability": [0.1, 0.2, 0.3]})
    out = without_identity(table)
    assert out["patient_id"].nunique() == 2 and out["patient_id"].iloc[0] == out["patient_id"].iloc[1]
    assert not out["patient_id"].str.contains("PID").any() and table["patient_id"].iloc[0] == "PID-1"


def test_predict_takes_cancel_like_the_erf_engine(phantom_records):
    """``cancel()`` is asked after each batch (with ``progress``): True stops the predictions there."""
    from hct.errors import ComputationCancelled

    seen = []
    with pytest.raises(ComputationCancelled, match="predictions of tiny cancelled after 2 of 4"):
        predict(
            tiny_model(),
            phantom_records,
            size=(64, 48),
            batch_size=2,
            ref=ModelRef.of("tiny"),
            progress=lambda done, total: seen.append(done),
            cancel=lambda: len(seen) >= 1,
        )
    assert seen == [2]
