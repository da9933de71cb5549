"""ROC analysis: the exact ROC AUC, its percentile-bootstrap confidence interval, paired AUC
differences and ROC curve points.

Resampling rule (as in the paper: plain percentile bootstrap of images, 10,000 iterations): each
resample draws ``n`` images with replacement from all images, positives and negatives together
(not stratified). A resample that holds one class only has no AUC; it is dropped, exactly as a loop
over ``sklearn.metrics.roc_auc_score`` would have to drop it, and the number dropped is reported.
The interval is ``np.quantile`` (linear interpolation) of the kept resamples' AUCs at
``alpha / 2`` and ``1 - alpha / 2``; the point estimate is the AUC of the full sample.

Every resample's AUC is computed without a Python loop over resamples: the scores are coded once
into ordered slots (one slot per distinct positive score, and for negatives one slot per gap between
and per tie with those scores), each chunk of resamples becomes a count matrix by one ``bincount``,
and the Mann-Whitney statistic follows from a cumulative sum over the negatives' slots.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass

import numpy as np

from hct.errors import EvaluationError

# Resamples generated and counted at once: bounds memory to about CHUNK_ROWS * n * 12 bytes.
CHUNK_ROWS = 250


@dataclass(frozen=True)
class BootstrapOptions:
    """How every interval is drawn: ``n_boot`` resamples from ``seed``, a ``1 - alpha`` percentile interval.

    The defaults are the paper's (10,000 resamples, 95%).
    """

    n_boot: int = 10_000
    seed: int = 0
    alpha: float = 0.05

    def __post_init__(self) -> None:
        if self.n_boot < 1:
            raise EvaluationError(
                f"the bootstrap needs at least 1 resample, got n_boot={self.n_boot}; the paper uses 10,000."
            )
        if not 0 < self.alpha < 1:
            raise EvaluationError(f"alpha must lie in (0, 1), got {self.alpha}; use 0.05 for a 95% interval.")

    def interval(self, values: np.ndarray) -> tuple[float, float]:
        """The ``alpha / 2`` and ``1 - alpha / 2`` quantiles of the resamples' ``values``."""
        if values.size == 0:
            raise EvaluationError(
                "every bootstrap resample held one class only, so no interval exists; "
                "add images of the rarer class or report the AUC without an interval."
            )
        low, high = np.quantile(values, [self.alpha / 2, 1 - self.alpha / 2])
        return float(low), float(high)


@dataclass(frozen=True)
class AUCResult:
    """An AUC with its percentile-bootstrap interval; ``n_skipped`` resamples had one class only."""

    auc: float
    low: float
    high: float
    n_pos: int
    n_neg: int
    n_skipped: int = 0


@dataclass(frozen=True)
class AUCDifference:
    """The paired AUC difference ``a - b`` with its percentile-bootstrap interval."""

    difference: float
    low: float
    high: float
    n_pos: int
    n_neg: int
    n_skipped: int = 0


def check_labels_scores(labels: np.ndarray, scores: np.ndarray, what: str = "scores") -> tuple[np.ndarray, np.ndarray]:
    """Labels as 0/1 integers and scores as finite floats of the same length, or EvaluationError."""
    labels = np.asarray(labels)
    scores = np.asarray(scores, dtype=float)
    if labels.ndim != 1 or scores.shape != labels.shape:
        raise EvaluationError(
            f"labels ({labels.shape}) and {what} ({scores.shape}) must be 1-D arrays of the same length; "
            "pass one label and one score per image."
        )
    bad = ~np.isin(labels, (0, 1))
    if bad.any():
        raise EvaluationError(
            f"{int(bad.sum())} labels are not 0 or 1 (e.g. {labels[bad][:3].tolist()}); "
            "evaluate only images with a known label (1 malignant, 0 not)."
        )
    bad = ~np.isfinite(scores)
    if bad.any():
        raise EvaluationError(
            f"{int(bad.sum())} {what} are NaN or infinite (first at position {int(np.flatnonzero(bad)[0])}); "
            "re-run the predictions or drop those images."
        )
    return labels.astype(np.int64), scores


def _require_both_classes(labels: np.ndarray) -> tuple[int, int]:
    n_pos = int(labels.sum())
    n_neg = int(labels.size - n_pos)
    if n_pos == 0 or n_neg == 0:
        raise EvaluationError(
            f"AUC needs malignant and non-malignant images, got {n_pos} positives and {n_neg} negatives; "
            "evaluate a set that holds both classes."
        )
    return n_pos, n_neg


def _slot_keys(labels: np.ndarray, scores: np.ndarray) -> tuple[np.ndarray, int]:
    """Each image's slot and the number of distinct positive scores ``k``.

    Slots ``0 .. 2k`` are for negatives, in score order: ``2j`` below the j-th distinct positive score
    (and above the previous one), ``2j + 1`` tied with it, ``2k`` above all. Slots ``2k + 1 + j`` are
    for positives scoring the j-th distinct positive score.
    """
    values = np.unique(scores[labels == 1])
    k = values.size
    pos = np.searchsorted(values, scores)  # number of distinct positive scores below each score
    tied = (pos < k) & (values[np.minimum(pos, k - 1)] == scores) if k else np.zeros_like(pos, dtype=bool)
    keys = np.where(labels == 1, 2 * k + 1 + pos, 2 * pos + tied)
    return keys.astype(np.int64), k


def _aucs_from_counts(counts: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Mann-Whitney AUC of each row of slot counts, with the row's numbers of positives and negatives."""
    negatives = counts[:, : 2 * k + 1]
    positives = counts[:, 2 * k + 1 :]
    below = np.cumsum(negatives, axis=1)[:, 0 : 2 * k : 2]  # negatives strictly below each positive score
    tied = negatives[:, 1 : 2 * k : 2]
    twice_u = (positives * (2 * below + tied)).sum(axis=1)
    n_pos = positives.sum(axis=1)
    n_neg = below[:, -1] + tied[:, -1] + negatives[:, -1] if k else negatives.sum(axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        aucs = twice_u / (2.0 * n_pos * n_neg)
    return aucs, n_pos, n_neg


def roc_auc(labels: Sequence[int] | np.ndarray, scores: Sequence[float] | np.ndarray) -> float:
    """Exact ROC AUC (Mann-Whitney U with ties counted one half), equal to ``sklearn.metrics.roc_auc_score``."""
    labels, scores = check_labels_scores(labels, scores)
    _require_both_classes(labels)
    keys, k = _slot_keys(labels, scores)
    counts = np.bincount(keys, minlength=3 * k + 1)[None, :]
    return float(_aucs_from_counts(counts, k)[0][0])


def iter_bootstrap_indices(n: int, n_boot: int, seed: int = 0, chunk_rows: int = CHUNK_ROWS) -> Iterator[np.ndarray]:
    """The resamples of :func:`bootstrap_indices`, ``chunk_rows`` rows at a time (same numbers)."""
    if n < 1 or n_boot < 1:
        raise EvaluationError(f"bootstrap needs n >= 1 images and n_boot >= 1 resamples, got n={n}, n_boot={n_boot}.")
    rng = np.random.default_rng(seed)
    for start in range(0, n_boot, chunk_rows):
        yield rng.integers(0, n, size=(min(chunk_rows, n_boot - start), n), dtype=np.int32)


def bootstrap_indices(n: int, n_boot: int, seed: int = 0) -> np.ndarray:
    """The ``(n_boot, n)`` image indices of every resample; a reference loop can reuse them exactly."""
    return np.concatenate(list(iter_bootstrap_indices(n, n_boot, seed)))


def resample_aucs(
    labels: Sequence[int] | np.ndarray,
    score_sets: Sequence[np.ndarray] | np.ndarray,
    *,
    n_boot: int = BootstrapOptions.n_boot,
    seed: int = BootstrapOptions.seed,
) -> tuple[np.ndarray, int]:
    """AUCs of each score set on the same resamples: ``(n_kept, n_sets)`` array and the number skipped."""
    labels = np.asarray(labels)
    score_sets = [check_labels_scores(labels, s)[1] for s in np.atleast_2d(np.asarray(score_sets, dtype=float))]
    labels = labels.astype(np.int64)
    _require_both_classes(labels)
    coded = [_slot_keys(labels, s) for s in score_sets]
    kept: list[np.ndarray] = []
    for idx in iter_bootstrap_indices(labels.size, n_boot, seed):
        rows = idx.shape[0]
        columns = []
        for keys, k in coded:
            width = 3 * k + 1
            flat = keys[idx]
            flat += (np.arange(rows) * width)[:, None]
            counts = np.bincount(flat.ravel(), minlength=rows * width).reshape(rows, width)
            aucs, n_pos, n_neg = _aucs_from_counts(counts, k)
            columns.append(aucs)
        both = (n_pos > 0) & (n_neg > 0)
        kept.append(np.stack(columns, axis=1)[both])
    aucs = np.concatenate(kept)
    return aucs, n_boot - aucs.shape[0]


def bootstrap_auc(
    labels: Sequence[int] | np.ndarray,
    scores: Sequence[float] | np.ndarray,
    n_boot: int = BootstrapOptions.n_boot,
    seed: int = BootstrapOptions.seed,
    alpha: float = BootstrapOptions.alpha,
) -> AUCResult:
    """AUC with its ``1 - alpha`` percentile-bootstrap interval (single-class resamples dropped)."""
    options = BootstrapOptions(n_boot, seed, alpha)
    labels, scores = check_labels_scores(labels, scores)
    n_pos, n_neg = _require_both_classes(labels)
    aucs, skipped = resample_aucs(labels, [scores], n_boot=n_boot, seed=seed)
    low, high = options.interval(aucs[:, 0])
    return AUCResult(roc_auc(labels, scores), low, high, n_pos, n_neg, skipped)


def paired_bootstrap_auc_difference(
    labels: Sequence[int] | np.ndarray,
    scores_a: Sequence[float] | np.ndarray,
    scores_b: Sequence[float] | np.ndarray,
    n_boot: int = BootstrapOptions.n_boot,
    seed: int = BootstrapOptions.seed,
    alpha: float = BootstrapOptions.alpha,
) -> AUCDifference:
    """AUC(a) - AUC(b) with its paired percentile interval: both models scored on the same resamples."""
    options = BootstrapOptions(n_boot, seed, alpha)
    labels, scores_a = check_labels_scores(labels, scores_a, "scores_a")
    _, scores_b = check_labels_scores(labels, scores_b, "scores_b")
    n_pos, n_neg = _require_both_classes(labels)
    aucs, skipped = resample_aucs(labels, [scores_a, scores_b], n_boot=n_boot, seed=seed)
    low, high = options.interval(aucs[:, 0] - aucs[:, 1])
    return AUCDifference(roc_auc(labels, scores_a) - roc_auc(labels, scores_b), low, high, n_pos, n_neg, skipped)


def roc_curve_points(
    labels: Sequence[int] | np.ndarray, scores: Sequence[float] | np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """False-positive rates, true-positive rates and thresholds of the ROC curve, for plotting."""
    labels, scores = check_labels_scores(labels, scores)
    _require_both_classes(labels)
    from sklearn.metrics import roc_curve

    fpr, tpr, thresholds = roc_curve(labels, scores)
    return fpr, tpr, thresholds
