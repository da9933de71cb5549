"""The predictions shipped beside the checkpoints, checked against them, and Table 3 with the cards' patch AUCs.

``checkpoints/predictions.csv`` holds the shipped checkpoints' predictions on the phantom test split,
written by ``python -m hct predict`` (its model names are the checkpoints' file names). Each row
records the sha256 of the weights that made it: a checkpoint retrained since then has another
sha256, and its rows are stale. The patch-stage models are not shipped; each card records its
patch model's test AUC (``metrics.patch_test_auc`` with ``patch_test_auc_low`` / ``_high``).
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence

import numpy as np
import pandas as pd

from hct.eval.breakdowns import model_names, overall_auc, params_millions, table3
from hct.eval.predictions import validate_predictions
from hct.eval.roc import BootstrapOptions
from hct.models.card import CHECKPOINT_DIR, ModelCard, find_checkpoints, read_card
from hct.models.ref import ModelRef

SHIPPED_PREDICTIONS = CHECKPOINT_DIR / "predictions.csv"
PATCH_AUC_KEYS = ("patch_test_auc", "patch_test_auc_low", "patch_test_auc_high")


def checkpoint_cards(folder: str | os.PathLike = CHECKPOINT_DIR) -> dict[str, ModelCard]:
    """The model cards of the checkpoints in ``folder``, by file name (the model name ``predict`` writes)."""
    return {path.stem: read_card(path) for path in find_checkpoints(folder)}


def prediction_refs(predictions: pd.DataFrame, cards: Mapping[str, ModelCard]) -> list[ModelRef]:
    """The refs of the models in ``predictions`` whose weights (``checkpoint_sha256``) are those of one of
    ``cards`` (:func:`checkpoint_cards`): architecture and colour from its card, never from the model's name."""
    by_sha = {card.weights_sha256: card for card in cards.values()}
    pairs = predictions[["model", "checkpoint_sha256"]].drop_duplicates()
    return [
        ModelRef.of(by_sha[sha].architecture, model, sha)
        for model, sha in pairs.itertuples(index=False)
        if sha in by_sha
    ]


def stale_models(predictions: pd.DataFrame, cards: Mapping[str, ModelCard]) -> dict[str, str]:
    """Each model whose predictions do not come from the checkpoint of its name, and each checkpoint
    without predictions, with the reason; empty when the predictions match the checkpoints."""
    stale = {}
    for model, rows in validate_predictions(predictions).groupby("model", sort=False):
        made_by = sorted(set(rows["checkpoint_sha256"]))
        card = cards.get(model)
        if card is None:
            stale[model] = "no checkpoint of this name"
        elif made_by != [card.weights_sha256]:
            made_by = ", ".join(f"{sha[:12]}…" if sha else "unrecorded" for sha in made_by)
            stale[model] = f"predicted by weights {made_by}, but the checkpoint's sha256 is {card.weights_sha256[:12]}…"
    for name in cards:
        if name not in stale and name not in set(predictions["model"]):
            stale[name] = "a checkpoint without predictions in this file"
    return stale


def patch_auc_rows(cards: Mapping[str, ModelCard], models: Sequence[str]) -> pd.DataFrame:
    """Table 3's patch rows: each model's patch-stage test AUC and interval from its card (NaN without)."""
    rows = []
    for model in models:
        metrics = cards[model].metrics if model in cards else {}
        auc, low, high = (float(metrics.get(key, np.nan)) for key in PATCH_AUC_KEYS)
        rows.append({"stage": "patch", "model": model, "auc": auc, "low": low, "high": high})
    return pd.DataFrame(rows, columns=["stage", "model", "auc", "low", "high"])


def table3_with_cards(
    predictions: pd.DataFrame,
    cards: Mapping[str, ModelCard],
    *,
    bootstrap: BootstrapOptions = BootstrapOptions(),
) -> pd.DataFrame:
    """Table 3 of ``predictions`` (all rows are the image stage without a ``stage`` column); a model's
    Patch cell comes from its patch-stage predictions, else from its card, else it is "—"."""
    predictions = validate_predictions(predictions)
    if "stage" not in predictions.columns:
        predictions = predictions.assign(stage="image")
    overall = overall_auc(predictions, bootstrap=bootstrap)
    have_patch = set(overall.loc[overall["stage"] == "patch", "model"])
    patch = patch_auc_rows(cards, [m for m in model_names(predictions) if m not in have_patch])
    return table3(pd.concat([overall, patch], ignore_index=True), params_millions(predictions))
