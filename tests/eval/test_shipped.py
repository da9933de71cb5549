"""The shipped predictions: checked against the checkpoints by sha256; Table 3's Patch column from the cards."""

import numpy as np
import pandas as pd
import pytest

from hct.eval import BootstrapOptions, overall_auc, read_predictions
from hct.eval.shipped import SHIPPED_PREDICTIONS, checkpoint_cards, stale_models, table3_with_cards
from hct.models.card import ModelCard

SHA = {"gmic": "a" * 64, "hct": "b" * 64}


def predictions(shas=SHA):
    labels = [1, 1, 0, 0, 0]
    frames = [
        pd.DataFrame(
            {
                "image_id": [f"i{i}" for i in range(5)],
                "patient_id": "",
                "laterality": "L",
                "view": "CC",
                "label": labels,
                "finding_types": ["mass", "mass", "", "", "mass"],
                "finding_size": [120.0, 300.0, np.nan, np.nan, 80.0],
                "probability": [0.9, 0.4 + 0.3 * m, 0.2, 0.5, 0.3],
                "model": name,
                "checkpoint_sha256": sha,
                "stage": "image",
                "params_millions": 2.8 - m,
            }
        )
        for m, (name, sha) in enumerate(shas.items())
    ]
    return pd.concat(frames, ignore_index=True)


def cards(**metrics):
    return {name: ModelCard(name, weights_sha256=sha, metrics=metrics.get(name, {})) for name, sha in SHA.items()}


def test_matching_predictions_are_not_stale():
    assert stale_models(predictions(), cards()) == {}


def test_stale_predictions_name_the_models():
    stale = stale_models(
        predictions({"gmic": "c" * 64, "hct": SHA["hct"], "old": ""}), {**cards(), "def": ModelCard("def")}
    )
    assert set(stale) == {"gmic", "old", "def"}
    assert "cccccccccccc…" in stale["gmic"] and "aaaaaaaaaaaa…" in stale["gmic"]
    assert stale["old"] == "no checkpoint of this name"
    assert "without predictions" in stale["def"]


def test_table3_patch_column_from_cards_or_a_dash():
    metrics = {"patch_test_auc": 0.9613, "patch_test_auc_low": 0.9543, "patch_test_auc_high": 0.9678}
    table = table3_with_cards(predictions(), cards(gmic=metrics), bootstrap=BootstrapOptions(50)).set_index("model")
    assert table.loc["gmic", "patch"] == "96.13 [95.43, 96.78]" and table.loc["hct", "patch"] == "—"
    image = overall_auc(predictions(), bootstrap=BootstrapOptions(50)).set_index("model")
    assert table.loc["hct", "image_auc"] == image.loc["hct", "auc"]  # all non-malignant images: 2 x 3 pairs
    assert table.loc["hct", "params_millions"] == pytest.approx(1.8)


def test_table3_patch_predictions_come_before_cards():
    metrics = {"patch_test_auc": 0.5, "patch_test_auc_low": 0.4, "patch_test_auc_high": 0.6}
    staged = pd.concat([predictions(), predictions().assign(stage="patch").query("model == 'gmic'")])
    table = table3_with_cards(staged, cards(gmic=metrics, hct=metrics), bootstrap=BootstrapOptions(50)).set_index(
        "model"
    )
    own = overall_auc(staged, bootstrap=BootstrapOptions(50)).set_index(["stage", "model"]).loc[("patch", "gmic")]
    assert table.loc["gmic", "patch_auc"] == own["auc"] and table.loc["hct", "patch"] == "50.00 [40.00, 60.00]"
    unstaged = table3_with_cards(predictions().drop(columns="stage"), {}, bootstrap=BootstrapOptions(50))
    assert unstaged["image"].ne("—").all() and unstaged["patch"].eq("—").all()


def test_shipped_predictions_match_the_shipped_checkpoints():
    shipped = read_predictions(SHIPPED_PREDICTIONS)
    assert stale_models(shipped, checkpoint_cards()) == {}, "re-run python -m hct predict (README: Checkpoints)"
    assert set(shipped["label"]) == {0, 1}
