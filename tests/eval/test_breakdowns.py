"""Breakdown membership rules on a hand-made table whose subsets are known."""

import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import roc_auc_score

from hct.errors import EvaluationError
from hct.eval import (
    BootstrapOptions,
    bootstrap_auc,
    finding_size_auc,
    finding_type_auc,
    negatives_note,
    overall_auc,
    paired_bootstrap_auc_difference,
    params_millions,
    score_table,
    size_tertile_auc,
    table3,
)

# image_id, label, finding_types, finding_size, score A, score B
ROWS = [
    ("n1", 0, "mass", 50.0, 0.30, 0.20),  # benign finding: a negative in Table 3, left out of the breakdowns
    ("n2", 0, "", np.nan, 0.10, 0.50),
    ("n3", 0, "", np.nan, 0.55, 0.30),
    ("n4", 0, "calcifications", 300.0, 0.20, 0.10),
    ("p1", 1, "mass", 80.0, 0.60, 0.25),
    ("p2", 1, "calcifications", 120.0, 0.50, 0.60),
    ("p3", 1, "mass;architectural_distortion", 260.0, 0.90, 0.35),
    ("p4", 1, "focal_asymmetry", np.nan, 0.40, 0.70),
    ("p5", 1, "mass", 390.0, 0.95, 0.80),
]
NEGATIVES = ["n2", "n3"]  # the breakdowns' negatives: no finding at all


def predictions(rows=ROWS, models=("A", "B")):
    frames = []
    for m, model in enumerate(models):
        frames.append(
            pd.DataFrame(
                {
                    "image_id": [r[0] for r in rows],
                    "patient_id": "",
                    "laterality": "L",
                    "view": "CC",
                    "label": [r[1] for r in rows],
                    "finding_types": [r[2] for r in rows],
                    "finding_size": [r[3] for r in rows],
                    "probability": [r[4 + m] for r in rows],
                    "model": model,
                    "checkpoint_sha256": "",
                }
            )
        )
    return pd.concat(frames, ignore_index=True)


def expected_auc(positive_ids, column):
    chosen = [r for r in ROWS if r[0] in set(positive_ids) | set(NEGATIVES)]
    return roc_auc_score([r[1] for r in chosen], [r[column] for r in chosen])


def cell(table, key_column, key, model):
    rows = table[(table[key_column] == key) & (table["model"] == model)]
    assert len(rows) == 1
    return rows.iloc[0]


@pytest.mark.parametrize(
    "finding_type, positives",
    [
        ("mass", ["p1", "p3", "p5"]),
        ("calcifications", ["p2"]),
        ("architectural_distortion", ["p3"]),
        ("focal_asymmetry", ["p4"]),
    ],
)
def test_finding_type_members(finding_type, positives):
    table = finding_type_auc(predictions(), "A", bootstrap=BootstrapOptions(200))
    for model, column in (("A", 4), ("B", 5)):
        row = cell(table, "finding_type", finding_type, model)
        assert (row["n_pos"], row["n_neg"], row["n_excluded"]) == (len(positives), 2, 2)
        assert row["auc"] == pytest.approx(expected_auc(positives, column))
    row = cell(table, "finding_type", finding_type, "B")
    assert row["difference"] == pytest.approx(expected_auc(positives, 5) - expected_auc(positives, 4))
    assert np.isnan(cell(table, "finding_type", finding_type, "A")["difference"])


@pytest.mark.parametrize(
    "threshold, positives",
    [
        (100, ["p1"]),
        (150, ["p1", "p2"]),
        (250, ["p1", "p2"]),
        (300, ["p1", "p2", "p3"]),
        (400, ["p1", "p2", "p3", "p5"]),
    ],
)
def test_size_threshold_members_exclude_unsized(threshold, positives):
    table = finding_size_auc(predictions(), "A", bootstrap=BootstrapOptions(200))
    row = cell(table, "threshold", threshold, "B")
    assert row["n_pos"] == len(positives) and row["n_neg"] == 2
    assert row["auc"] == pytest.approx(expected_auc(positives, 5))


def test_tertiles_split_sized_malignant_images():
    table = size_tertile_auc(predictions(), "A", bootstrap=BootstrapOptions(200))
    # sized malignant: p1 80, p2 120, p3 260, p5 390 -> 2 / 1 / 1 (first part takes the extra image)
    for tertile, positives, lo, hi in (
        ("small", ["p1", "p2"], 80, 120),
        ("medium", ["p3"], 260, 260),
        ("large", ["p5"], 390, 390),
    ):
        row = cell(table, "tertile", tertile, "A")
        assert row["n_pos"] == len(positives) and (row["size_min"], row["size_max"]) == (lo, hi)
        assert row["auc"] == pytest.approx(expected_auc(positives, 4))


def test_breakdown_ci_equals_bootstrap_on_the_subset():
    table = finding_size_auc(predictions(), "A", thresholds=[300], bootstrap=BootstrapOptions(300, seed=4))
    ids = ["n2", "n3", "p1", "p2", "p3"]  # the subset, in table order
    chosen = [r for r in ROWS if r[0] in ids]
    labels = [r[1] for r in chosen]
    single = bootstrap_auc(labels, [r[5] for r in chosen], n_boot=300, seed=4)
    paired = paired_bootstrap_auc_difference(labels, [r[5] for r in chosen], [r[4] for r in chosen], n_boot=300, seed=4)
    row = cell(table, "threshold", 300, "B")
    assert (row["low"], row["high"]) == pytest.approx((single.low, single.high))
    assert (row["difference_low"], row["difference_high"]) == pytest.approx((paired.low, paired.high))
    assert row["n_skipped"] == single.n_skipped


def test_empty_subsets_are_nan_with_reason():
    rows = [r for r in ROWS if r[0] != "p4"]
    table = finding_type_auc(predictions(rows), "A", bootstrap=BootstrapOptions(50))
    row = cell(table, "finding_type", "focal_asymmetry", "B")
    assert np.isnan(row["auc"]) and np.isnan(row["difference"]) and "no malignant" in row["reason"]
    small = finding_size_auc(predictions(), "A", thresholds=[50], bootstrap=BootstrapOptions(50))
    assert small["auc"].isna().all() and (small["reason"] != "").all()
    no_negatives = finding_type_auc(predictions([r for r in ROWS if r[1] == 1]), bootstrap=BootstrapOptions(50))
    assert no_negatives["auc"].isna().all() and (no_negatives["reason"] == "no negative images").all()
    only_benign = finding_type_auc(
        predictions([r for r in ROWS if r[0] not in NEGATIVES]), bootstrap=BootstrapOptions(50)
    )
    assert (only_benign["reason"] == "no negative images (2 non-malignant images with a finding are left out)").all()


def test_negatives_follow_the_paper():
    """Table 3: malignant vs all non-malignant; Table A1 / Fig. A2: malignant vs no finding at all."""
    rows = [
        ("p", 1, "mass", 120.0, 0.6, 0.6),
        ("clean", 0, "", np.nan, 0.2, 0.2),
        ("benign", 0, "mass", 120.0, 0.9, 0.9),
    ]
    df = predictions(rows)
    options = BootstrapOptions(200)
    overall = overall_auc(df, bootstrap=options).set_index("model")
    assert overall.loc["A", ["n_pos", "n_neg", "auc"]].tolist() == [1, 2, 0.5]  # 0.6 beats 0.2, not 0.9
    for table, key, value in (
        (finding_type_auc(df, bootstrap=options), "finding_type", "mass"),
        (finding_size_auc(df, thresholds=[150], bootstrap=options), "threshold", 150),
        (size_tertile_auc(df, bootstrap=options), "tertile", "small"),
    ):
        row = cell(table, key, value, "A")
        assert (row["n_pos"], row["n_neg"], row["n_excluded"], row["auc"]) == (
            1,
            1,
            1,
            1.0,
        )  # the benign image left out
        note = negatives_note(table)
        assert "the 1 images with no finding" in note and "1 non-malignant images with benign findings" in note


def test_mismatched_ids_name_count_and_examples():
    df = predictions()
    df.loc[(df["model"] == "B") & (df["image_id"] == "p5"), "image_id"] = "p9"
    with pytest.raises(EvaluationError, match=r"1 image_id\(s\) only in 'A' \('p5'\), 1 only in 'B' \('p9'\)"):
        score_table(df)


def test_duplicate_ids_nan_scores_and_label_conflicts_raise():
    df = predictions()
    with pytest.raises(EvaluationError, match="more than once"):
        score_table(pd.concat([df, df.iloc[[0]]]))
    bad = df.copy()
    bad.loc[3, "probability"] = np.nan
    with pytest.raises(EvaluationError, match="NaN"):
        finding_type_auc(bad)
    bad = df.copy()
    bad.loc[3, "probability"] = 1.5
    with pytest.raises(EvaluationError, match=r"outside \[0, 1\]"):
        finding_size_auc(bad)
    bad = df.copy()
    bad.loc[(bad["model"] == "B") & (bad["image_id"] == "n1"), "label"] = 1
    with pytest.raises(EvaluationError, match="disagree on the label"):
        score_table(bad)
    with pytest.raises(EvaluationError, match="reference model 'C'"):
        finding_type_auc(df, "C", bootstrap=BootstrapOptions(10))


def test_overall_and_table3():
    df = predictions()
    overall = overall_auc(df, bootstrap=BootstrapOptions(100)).set_index("model")
    assert overall.loc["A", "auc"] == pytest.approx(roc_auc_score([r[1] for r in ROWS], [r[4] for r in ROWS]))
    patch = df.assign(stage="patch", params_millions=df["model"].map({"A": 2.80, "B": 1.73}))
    staged = overall_auc(pd.concat([patch, df.assign(stage="image")]), bootstrap=BootstrapOptions(100))
    table = table3(staged, {**params_millions(patch), "B": 1.5}).set_index("model")
    assert table.loc["A", "params_millions"] == 2.80 and table.loc["B", "params_millions"] == 1.5
    value, low, high = table.loc["A", ["image_auc", "image_low", "image_high"]]
    assert value == pytest.approx(overall.loc["A", "auc"])
    assert table.loc["A", "image"] == f"{100 * value:.2f} [{100 * low:.2f}, {100 * high:.2f}]"
    image_only = table3(staged[staged["stage"] == "image"])
    assert image_only["patch"].eq("—").all() and image_only["params_millions"].isna().all()
    with pytest.raises(EvaluationError, match="'stage' column"):
        table3(overall.reset_index())
