"""Evaluation: predictions tables, ROC AUC with percentile-bootstrap CIs, the paper's breakdowns and figures.

The names below are imported from their modules on first use (``hct.lazy``)."""

from hct.lazy import lazy_exports

lazy_exports(
    __name__,
    {
        "hct.eval.breakdowns": (
            "TERTILES",
            "finding_size_auc",
            "finding_type_auc",
            "image_stage",
            "negatives_note",
            "no_finding",
            "overall_auc",
            "params_millions",
            "score_table",
            "size_tertile_auc",
            "size_tertiles",
            "table3",
        ),
        "hct.eval.evaluation": ("EvaluationReport", "evaluate", "roc_curves", "write_report"),
        "hct.eval.options": ("SIZE_THRESHOLDS",),
        "hct.eval.predictions": (
            "PREDICTION_COLUMNS",
            "batch_records",
            "card_preprocessing",
            "predict",
            "predict_batches",
            "read_predictions",
            "validate_predictions",
            "write_predictions",
        ),
        "hct.eval.roc": (
            "AUCDifference",
            "AUCResult",
            "BootstrapOptions",
            "bootstrap_auc",
            "bootstrap_indices",
            "iter_bootstrap_indices",
            "paired_bootstrap_auc_difference",
            "resample_aucs",
            "roc_auc",
            "roc_curve_points",
        ),
    },
)
