"""Evaluation: predictions tables, AUC with percentile-bootstrap CIs, the paper's breakdowns and figures."""

from hct.eval.auc import (
    AUCDifference,
    AUCResult,
    auc,
    bootstrap_auc,
    bootstrap_indices,
    iter_bootstrap_indices,
    paired_bootstrap_auc_difference,
    resample_aucs,
    roc_curve_points,
)
from hct.eval.breakdowns import (
    SIZE_THRESHOLDS,
    TERTILES,
    finding_size_auc,
    finding_type_auc,
    overall_auc,
    score_table,
    size_tertile_auc,
    size_tertiles,
    table3,
)
from hct.eval.predictions import (
    PREDICTION_COLUMNS,
    batch_records,
    predict,
    predict_batches,
    read_predictions,
    validate_predictions,
    write_predictions,
)
from hct.eval.report import EvaluationReport, evaluate, write_report

__all__ = [
    "AUCDifference", "AUCResult", "EvaluationReport", "PREDICTION_COLUMNS", "SIZE_THRESHOLDS", "TERTILES",
    "auc", "batch_records", "bootstrap_auc", "bootstrap_indices", "evaluate", "finding_size_auc",
    "finding_type_auc", "iter_bootstrap_indices", "overall_auc", "paired_bootstrap_auc_difference", "predict",
    "predict_batches", "read_predictions", "resample_aucs", "roc_curve_points", "score_table",
    "size_tertile_auc", "size_tertiles", "table3", "validate_predictions", "write_predictions", "write_report",
]
