"""Evaluation: predictions tables, ROC AUC with percentile-bootstrap CIs, the paper's breakdowns and figures."""

from hct.eval.breakdowns import (
    SIZE_THRESHOLDS,
    TERTILES,
    finding_size_auc,
    finding_type_auc,
    image_stage,
    negatives_note,
    no_finding,
    overall_auc,
    params_millions,
    score_table,
    size_tertile_auc,
    size_tertiles,
    table3,
)
from hct.eval.evaluation import EvaluationReport, evaluate, roc_curves, write_report
from hct.eval.predictions import (
    PREDICTION_COLUMNS,
    batch_records,
    card_preprocessing,
    predict,
    predict_batches,
    read_predictions,
    validate_predictions,
    write_predictions,
)
from hct.eval.roc import (
    AUCDifference,
    AUCResult,
    BootstrapOptions,
    bootstrap_auc,
    bootstrap_indices,
    iter_bootstrap_indices,
    paired_bootstrap_auc_difference,
    resample_aucs,
    roc_auc,
    roc_curve_points,
)

__all__ = [
    "AUCDifference", "AUCResult", "BootstrapOptions", "EvaluationReport", "PREDICTION_COLUMNS",
    "SIZE_THRESHOLDS", "TERTILES", "batch_records", "bootstrap_auc", "bootstrap_indices", "card_preprocessing",
    "evaluate", "finding_size_auc", "finding_type_auc", "image_stage", "iter_bootstrap_indices",
    "negatives_note", "no_finding", "overall_auc", "paired_bootstrap_auc_difference", "params_millions",
    "predict", "predict_batches", "read_predictions", "resample_aucs", "roc_auc", "roc_curve_points",
    "roc_curves", "score_table", "size_tertile_auc", "size_tertiles", "table3", "validate_predictions",
    "write_predictions", "write_report",
]
