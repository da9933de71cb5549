"""ROC AUC, bootstrap CIs and paired differences against sklearn loops on the same resamples."""

import numpy as np
import pytest
from sklearn.metrics import roc_auc_score

from hct.errors import EvaluationError
from hct.eval import (
    BootstrapOptions,
    bootstrap_auc,
    bootstrap_indices,
    iter_bootstrap_indices,
    paired_bootstrap_auc_difference,
    resample_aucs,
    roc_auc,
    roc_curve_points,
)


def synthetic(n_pos=120, n_neg=600, seed=3, decimals=None):
    rng = np.random.default_rng(seed)
    labels = np.r_[np.ones(n_pos, int), np.zeros(n_neg, int)]
    scores = 1 / (1 + np.exp(-np.r_[rng.normal(1.2, 1, n_pos), rng.normal(0, 1, n_neg)]))
    if decimals is not None:
        scores = np.round(scores, decimals)  # many ties
    order = rng.permutation(labels.size)
    return labels[order], scores[order]


def reference_loop(labels, score_sets, idx):
    """The straightforward bootstrap: sklearn per resample, single-class resamples skipped."""
    out = []
    for row in idx:
        y = labels[row]
        if y.min() == y.max():
            continue
        out.append([roc_auc_score(y, s[row]) for s in score_sets])
    return np.array(out)


def test_exact_auc_equals_sklearn_with_ties():
    rng = np.random.default_rng(0)
    for _ in range(300):
        n = int(rng.integers(2, 30))
        labels = rng.integers(0, 2, n)
        if labels.min() == labels.max():
            continue
        scores = rng.integers(0, 4, n) / 3.0
        assert roc_auc(labels, scores) == pytest.approx(roc_auc_score(labels, scores), abs=1e-12)


def test_hand_computed_auc():
    # positives 0.8, 0.4; negatives 0.4, 0.1 -> pairs: 1 + 1 + 0.5 + 1 = 3.5 of 4.
    assert roc_auc([1, 1, 0, 0], [0.8, 0.4, 0.4, 0.1]) == 0.875


@pytest.mark.parametrize("decimals", [None, 2])
def test_resample_aucs_match_sklearn_loop_on_same_resamples(decimals):
    labels, scores = synthetic(decimals=decimals)
    aucs, skipped = resample_aucs(labels, [scores], n_boot=300, seed=5)
    expected = reference_loop(labels, [scores], bootstrap_indices(labels.size, 300, seed=5))
    assert skipped == 0
    np.testing.assert_allclose(aucs[:, 0], expected[:, 0], atol=1e-12)


def test_bootstrap_ci_matches_reference_loop():
    labels, scores = synthetic(seed=11)
    result = bootstrap_auc(labels, scores, n_boot=2000, seed=1)
    ref = reference_loop(labels, [scores], bootstrap_indices(labels.size, 2000, seed=1))[:, 0]
    low, high = np.quantile(ref, [0.025, 0.975])
    assert abs(result.low - low) < 0.002 and abs(result.high - high) < 0.002
    assert result.auc == pytest.approx(roc_auc_score(labels, scores))
    assert result.low < result.auc < result.high
    assert (result.n_pos, result.n_neg) == (120, 600)


def test_chunked_indices_equal_whole_matrix():
    whole = bootstrap_indices(50, 700, seed=9)
    chunks = np.concatenate(list(iter_bootstrap_indices(50, 700, seed=9, chunk_rows=64)))
    assert whole.shape == (700, 50)
    np.testing.assert_array_equal(whole, chunks)
    np.testing.assert_array_equal(bootstrap_indices(50, 100, seed=9), whole[:100])


def test_single_class_resamples_are_skipped_and_counted():
    labels = np.array([1, 0, 0, 0, 0, 0])
    scores = np.array([0.9, 0.1, 0.2, 0.3, 0.4, 0.95])
    idx = bootstrap_indices(6, 500, seed=2)
    expected_skipped = sum(labels[row].min() == labels[row].max() for row in idx)
    aucs, skipped = resample_aucs(labels, [scores], n_boot=500, seed=2)
    assert skipped == expected_skipped > 0
    np.testing.assert_allclose(aucs[:, 0], reference_loop(labels, [scores], idx)[:, 0])
    assert bootstrap_auc(labels, scores, n_boot=500, seed=2).n_skipped == expected_skipped


def test_paired_difference_matches_definition():
    labels, a = synthetic(seed=4)
    b = np.clip(a + np.random.default_rng(8).normal(0, 0.2, a.size), 0, 1)
    result = paired_bootstrap_auc_difference(labels, a, b, n_boot=500, seed=3)
    ref = reference_loop(labels, [a, b], bootstrap_indices(labels.size, 500, seed=3))
    low, high = np.quantile(ref[:, 0] - ref[:, 1], [0.025, 0.975])
    assert result.difference == pytest.approx(roc_auc_score(labels, a) - roc_auc_score(labels, b))
    assert result.low == pytest.approx(low, abs=1e-12) and result.high == pytest.approx(high, abs=1e-12)


@pytest.mark.parametrize(
    "labels, scores, match",
    [
        ([1, 1, 1], [0.1, 0.2, 0.3], "positives and 0 negatives"),
        ([1, 0, 0], [0.1, np.nan, 0.3], "NaN"),
        ([1, 0, 2], [0.1, 0.2, 0.3], "not 0 or 1"),
        ([1, 0], [0.1, 0.2, 0.3], "same length"),
    ],
)
def test_bad_inputs_raise_clear_errors(labels, scores, match):
    with pytest.raises(EvaluationError, match=match):
        bootstrap_auc(labels, scores, n_boot=10)


@pytest.mark.parametrize("options, match", [({"n_boot": 0}, "at least 1 resample"), ({"alpha": 1.0}, "alpha must lie")])
def test_bad_bootstrap_options_raise(options, match):
    with pytest.raises(EvaluationError, match=match):
        BootstrapOptions(**options)


def test_all_resamples_single_class_raises():
    labels = np.array([1, 0])
    seed = next(s for s in range(100) if bootstrap_indices(2, 1, seed=s)[0].tolist() in ([0, 0], [1, 1]))
    with pytest.raises(EvaluationError, match="one class only"):
        bootstrap_auc(labels, [0.9, 0.1], n_boot=1, seed=seed)


def test_roc_curve_points_end_at_corners():
    fpr, tpr, _ = roc_curve_points([0, 0, 1, 1], [0.1, 0.4, 0.35, 0.8])
    assert (fpr[0], tpr[0], fpr[-1], tpr[-1]) == (0, 0, 1, 1)
