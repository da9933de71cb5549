"""``python -m hct eval``: AUC tables and figures from one or more predictions files."""

from __future__ import annotations

import argparse
from pathlib import Path

import pandas as pd

from hct.errors import EvaluationError
from hct.eval.breakdowns import SIZE_THRESHOLDS
from hct.eval.predictions import read_predictions, validate_predictions
from hct.eval.report import evaluate, write_report


def _param(text: str) -> tuple[str, float]:
    name, _, value = text.rpartition("=")
    try:
        millions = float(value)
    except ValueError:
        millions = float("nan")
    if not name or millions != millions:
        raise argparse.ArgumentTypeError(f"expected MODEL=MILLIONS (e.g. GMIC=2.80), got {text!r}")
    return name, millions


def add_commands(subparsers: argparse._SubParsersAction) -> None:
    """Register ``eval``."""
    parser = subparsers.add_parser(
        "eval", help="AUC with bootstrap CIs, finding type/size breakdowns and figures from predictions",
        description="Evaluate predictions tables (CSV/Parquet from `python -m hct predict`) as in the paper: "
        "auc.csv, finding_type.csv, finding_size.csv, size_tertiles.csv, table3.csv (with a stage column), "
        "PNG and offline HTML figures.",
    )
    parser.add_argument("--predictions", nargs="+", required=True, type=Path, help="predictions files (one or more models)")
    parser.add_argument("--reference-model", help="model the others are compared with (default: the first model)")
    parser.add_argument("--out", required=True, type=Path, help="output folder")
    parser.add_argument("--n-boot", type=int, default=10_000, help="bootstrap resamples (default 10000, as in the paper)")
    parser.add_argument("--seed", type=int, default=0, help="bootstrap seed")
    parser.add_argument("--alpha", type=float, default=0.05, help="1 - confidence level (default 0.05)")
    parser.add_argument("--thresholds", type=float, nargs="+", default=list(SIZE_THRESHOLDS), help="finding-size thresholds")
    parser.add_argument("--params", type=_param, nargs="*", default=[], metavar="MODEL=MILLIONS",
                        help="parameter counts for Table 3, e.g. GMIC=2.80 HCT=1.73")
    parser.set_defaults(func=run_eval)


def run_eval(args: argparse.Namespace) -> int:
    """Handler of ``python -m hct eval``."""
    if args.n_boot < 1:
        raise EvaluationError(f"--n-boot must be at least 1, got {args.n_boot}.")
    frames = [read_predictions(path) for path in args.predictions]
    if len({"stage" in f.columns for f in frames}) > 1:
        raise EvaluationError("some predictions files have a 'stage' column and some do not; add it to all or none.")
    predictions = validate_predictions(pd.concat(frames, ignore_index=True), " + ".join(map(str, args.predictions)))
    report = evaluate(
        predictions, reference=args.reference_model, n_boot=args.n_boot, seed=args.seed, alpha=args.alpha,
        thresholds=args.thresholds, params=dict(args.params),
    )
    for path in write_report(report, args.out):
        print(path)
    return 0
