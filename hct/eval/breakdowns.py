"""The paper's evaluation tables: overall AUC, AUC by finding type (Table A1), by finding-size
threshold (Fig. A2a) and by size tertile (Fig. A2b), and the Table 3 layout.

Negatives follow the paper. The overall AUC (Table 3) pits every malignant image against every
non-malignant one. The breakdowns (Table A1, Fig. A2) pit a subset of the malignant images against
the images with no finding at all: a non-malignant image with a (benign) finding is left out of both
classes, and each row counts those images in ``n_excluded``. Models are compared on the same images
(joined on image_id) and on the same bootstrap resamples, so a model's difference to the reference
model has a paired interval. A cell that cannot be computed (no positives, no negatives, only
single-class resamples) is NaN with a ``reason``; it never raises and never shows a number computed
on the wrong images.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
import pandas as pd

from hct.data.records import FINDING_TYPES
from hct.errors import EvaluationError
from hct.eval.options import SIZE_THRESHOLDS
from hct.eval.predictions import STAGES, format_examples, validate_predictions
from hct.eval.roc import BootstrapOptions, resample_aucs, roc_auc

TERTILES = ("small", "medium", "large")
RESULT_COLUMNS = (
    "model",
    "n_pos",
    "n_neg",
    "n_excluded",
    "auc",
    "low",
    "high",
    "n_skipped",
    "reference",
    "difference",
    "difference_low",
    "difference_high",
    "reason",
)
OVERALL_COLUMNS = ("n_pos", "n_neg", "auc", "low", "high", "n_skipped", "reason")


def model_names(predictions: pd.DataFrame) -> list[str]:
    """The models of a predictions table in order of first appearance."""
    return list(dict.fromkeys(predictions["model"]))


def image_stage(predictions: pd.DataFrame) -> pd.DataFrame:
    """The rows the breakdowns use: the image stage (the patch stage when there is none; every row
    of a table without a ``stage`` column)."""
    if "stage" not in predictions.columns:
        return predictions
    stages = set(predictions["stage"])
    return predictions[predictions["stage"] == ("image" if "image" in stages else "patch")]


def score_table(predictions: pd.DataFrame) -> pd.DataFrame:
    """One row per image_id: label, finding_types, finding_size and one probability column per model.

    Raises EvaluationError when the models were not run on the same images or disagree on a label.
    """
    predictions = validate_predictions(predictions)
    if "stage" in predictions.columns and predictions["stage"].nunique() > 1:
        raise EvaluationError(
            "the predictions mix patch and image stages; compare one stage at a time (filter on 'stage')."
        )
    models = model_names(predictions)
    first = predictions[predictions["model"] == models[0]].set_index("image_id")
    table = first[["label", "finding_types", "finding_size"]].copy()
    for name in models:
        rows = predictions[predictions["model"] == name].set_index("image_id")
        only_here = rows.index.difference(table.index)
        only_there = table.index.difference(rows.index)
        if len(only_here) or len(only_there):
            raise EvaluationError(
                f"models {models[0]!r} and {name!r} were not run on the same images: "
                f"{len(only_there)} image_id(s) only in {models[0]!r} ({format_examples(only_there)}), "
                f"{len(only_here)} only in {name!r} ({format_examples(only_here)}); predict every model on the same split."
            )
        differ = rows["label"].reindex(table.index) != table["label"]
        if differ.any():
            raise EvaluationError(
                f"models {models[0]!r} and {name!r} disagree on the label of {int(differ.sum())} image(s) "
                f"({format_examples(table.index[differ])}); the predictions come from different manifests."
            )
        table[name] = rows["probability"].reindex(table.index)
    return table


def no_finding(table: pd.DataFrame) -> pd.Series:
    """The breakdowns' negatives: non-malignant images with no finding at all (Table A1, Fig. A2)."""
    return (table["label"] == 0) & (table["finding_types"] == "")


def _compare(
    table: pd.DataFrame,
    positives: pd.Series,
    negatives: pd.Series,
    models: Sequence[str],
    reference: str | None,
    bootstrap: BootstrapOptions,
) -> list[dict[str, object]]:
    """One result row per model for ``positives`` against ``negatives`` (masks of malignant and
    non-malignant images); the other non-malignant images are counted as excluded."""
    subset = table[positives.to_numpy() | negatives.to_numpy()]
    labels = subset["label"].to_numpy()
    n_pos, n_neg = int(labels.sum()), int((labels == 0).sum())
    n_excluded = int((table["label"] == 0).sum()) - n_neg
    rows = [
        {
            "model": m,
            "n_pos": n_pos,
            "n_neg": n_neg,
            "n_excluded": n_excluded,
            "auc": np.nan,
            "low": np.nan,
            "high": np.nan,
            "n_skipped": 0,
            "reference": reference or "",
            "difference": np.nan,
            "difference_low": np.nan,
            "difference_high": np.nan,
            "reason": "",
        }
        for m in models
    ]
    left_out = f" ({n_excluded} non-malignant images with a finding are left out)" if n_excluded else ""
    reason = (
        "no malignant images in this subset" if n_pos == 0 else f"no negative images{left_out}" if n_neg == 0 else ""
    )
    if not reason:
        aucs, skipped = resample_aucs(
            labels, subset[list(models)].to_numpy().T, n_boot=bootstrap.n_boot, seed=bootstrap.seed
        )
        if aucs.shape[0] == 0:
            reason = "every bootstrap resample held one class only"
    if reason:
        for row in rows:
            row["reason"] = reason
        return rows
    point = {m: roc_auc(labels, subset[m].to_numpy()) for m in models}
    for j, row in enumerate(rows):
        row["auc"] = point[row["model"]]
        row["low"], row["high"] = bootstrap.interval(aucs[:, j])
        row["n_skipped"] = skipped
        if reference is not None and row["model"] != reference:
            r = list(models).index(reference)
            row["difference"] = point[row["model"]] - point[reference]
            row["difference_low"], row["difference_high"] = bootstrap.interval(aucs[:, j] - aucs[:, r])
    return rows


def _breakdown(
    predictions: pd.DataFrame,
    subsets: Mapping[object, pd.Series],
    group: str,
    reference: str | None,
    bootstrap: BootstrapOptions,
    table: pd.DataFrame,
) -> pd.DataFrame:
    models = model_names(predictions)
    if reference is not None and reference not in models:
        raise EvaluationError(f"reference model {reference!r} is not in the predictions (models: {', '.join(models)}).")
    rows = []
    for key, positives in subsets.items():
        for row in _compare(table, positives, no_finding(table), models, reference, bootstrap):
            rows.append({group: key, **row})
    return pd.DataFrame(rows, columns=[group, *RESULT_COLUMNS])


def overall_auc(predictions: pd.DataFrame, *, bootstrap: BootstrapOptions = BootstrapOptions()) -> pd.DataFrame:
    """Table 3: every model's (and stage's, with a ``stage`` column) AUC with its interval, malignant
    against all non-malignant images."""
    predictions = validate_predictions(predictions)
    keys = ["stage", "model"] if "stage" in predictions.columns else ["model"]
    frames = []
    for key, rows in predictions.groupby(keys, sort=False):
        table = score_table(rows)
        result = _compare(table, table["label"] == 1, table["label"] == 0, [key[-1]], None, bootstrap)[0]
        frames.append({**dict(zip(keys, key)), **result})
    return pd.DataFrame(frames, columns=[*keys, *OVERALL_COLUMNS])


def finding_type_auc(
    predictions: pd.DataFrame,
    reference: str | None = None,
    *,
    bootstrap: BootstrapOptions = BootstrapOptions(),
) -> pd.DataFrame:
    """Table A1: per finding type, malignant images with that type against images with no finding."""
    table = score_table(predictions)
    types = table["finding_types"].str.split(";")
    malignant = table["label"] == 1
    subsets = {t: malignant & types.apply(lambda ts, t=t: t in ts) for t in FINDING_TYPES}
    return _breakdown(predictions, subsets, "finding_type", reference, bootstrap, table)


def finding_size_auc(
    predictions: pd.DataFrame,
    reference: str | None = None,
    thresholds: Sequence[float] = SIZE_THRESHOLDS,
    *,
    bootstrap: BootstrapOptions = BootstrapOptions(),
) -> pd.DataFrame:
    """Fig. A2a: per threshold, malignant images with finding_size < threshold against images with no finding.

    Malignant images without a size (NaN) are in no subset.
    """
    table = score_table(predictions)
    malignant = table["label"] == 1
    subsets = {t: malignant & (table["finding_size"] < t) for t in thresholds}
    return _breakdown(predictions, subsets, "threshold", reference, bootstrap, table)


def negatives_note(breakdown: pd.DataFrame) -> str:
    """What a breakdown's classes are, with its counts: a caption for its table or figure."""
    if breakdown.empty:
        return ""
    n_neg, n_excluded = int(breakdown["n_neg"].iloc[0]), int(breakdown["n_excluded"].iloc[0])
    return (
        f"Positives: the malignant images of each subset. Negatives: the {n_neg} images with no finding at all, "
        f"as in the paper's Table A1 and Fig. A2; {n_excluded} non-malignant images with benign findings are "
        "left out of both classes."
    )


def size_tertiles(table: pd.DataFrame) -> dict[str, pd.Series]:
    """Masks of the small, medium and large thirds of the malignant images that have a size.

    Rank-based split: images sorted by (finding_size, image_id) are cut into three parts whose sizes
    differ by at most one (the first parts take the extra images), so images of tied size at a cut
    may fall in neighbouring tertiles, always the same way.
    """
    sized = table[(table["label"] == 1) & np.isfinite(table["finding_size"])]
    order = sized.assign(_id=sized.index).sort_values(["finding_size", "_id"], kind="mergesort").index
    return {
        name: pd.Series(table.index.isin(part), index=table.index)
        for name, part in zip(TERTILES, np.array_split(order, 3))
    }


def size_tertile_auc(
    predictions: pd.DataFrame,
    reference: str | None = None,
    *,
    bootstrap: BootstrapOptions = BootstrapOptions(),
) -> pd.DataFrame:
    """Fig. A2b: each size tertile of the malignant images against images with no finding; the difference
    columns hold each model's absolute improvement over ``reference``."""
    table = score_table(predictions)
    subsets = size_tertiles(table)
    result = _breakdown(predictions, subsets, "tertile", reference, bootstrap, table)
    sizes = {name: table.loc[mask.to_numpy(), "finding_size"] for name, mask in subsets.items()}
    result.insert(1, "size_min", result["tertile"].map(lambda t: sizes[t].min()))
    result.insert(2, "size_max", result["tertile"].map(lambda t: sizes[t].max()))
    return result


def _format_ci(value: float, low: float, high: float) -> str:
    return "—" if np.isnan(value) else f"{100 * value:.2f} [{100 * low:.2f}, {100 * high:.2f}]"


def params_millions(predictions: pd.DataFrame) -> dict[str, float]:
    """Each model's parameter count (millions) from a predictions table's ``params_millions`` column."""
    if "params_millions" not in predictions.columns:
        return {}
    return predictions.groupby("model", sort=False)["params_millions"].first().dropna().to_dict()


def table3(overall: pd.DataFrame, params: Mapping[str, float] | None = None) -> pd.DataFrame:
    """Table 3 layout: one row per model, its parameters (millions) and "AUC [95% CI]" (percent) of the
    patch and the image models ("—" where there is none).

    ``overall`` holds AUC rows with a ``stage`` column (``overall_auc`` of staged predictions); ``params``
    maps a model to its parameters in millions.
    """
    if "stage" not in overall.columns:
        raise EvaluationError(
            "Table 3 needs AUC rows with a 'stage' column (patch or image); add a stage column to the predictions."
        )
    out = pd.DataFrame({"model": list(dict.fromkeys(overall["model"]))})
    out["params_millions"] = out["model"].map(lambda m: (params or {}).get(m, np.nan)).astype(float)
    for stage in STAGES:
        rows = overall[overall["stage"] == stage].set_index("model")
        for column in ("auc", "low", "high"):
            out[f"{stage}_{column}"] = out["model"].map(rows[column]).astype(float)
        out[stage] = [_format_ci(*vals) for vals in out[[f"{stage}_auc", f"{stage}_low", f"{stage}_high"]].to_numpy()]
    return out
