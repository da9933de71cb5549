"""``python -m hct eval``: AUC tables and figures from one or more predictions files."""

from __future__ import annotations

import argparse
from pathlib import Path

import pandas as pd

from hct.errors import EvaluationError
from hct.eval.breakdowns import SIZE_THRESHOLDS, negatives_note
from hct.eval.evaluation import evaluate, write_report
from hct.eval.predictions import card_preprocessing, predict, read_predictions, validate_predictions, write_predictions
from hct.eval.roc import BootstrapOptions


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
    """Register ``predict`` and ``eval``."""
    parser = subparsers.add_parser(
        "predict", help="malignancy probability of every image of a data set, one row per (model, image)",
        description="Run checkpoints over a data set (batched, on the GPU when present; images preprocessed as each "
        "checkpoint's card says) and write a predictions table (CSV, or Parquet for a .parquet path) for "
        "`python -m hct eval`.",
    )
    parser.add_argument("--checkpoint", nargs="+", required=True, help="checkpoint paths (or registry names: random init)")
    parser.add_argument("--data", required=True, help="a manifest .csv, a phantom folder, a folder of images, or 'samples'")
    parser.add_argument("--split", default=None, help="only the records of this split (train, val, test)")
    parser.add_argument("--size", default=None, help="model input HxW (default: each checkpoint's training size)")
    parser.add_argument("--batch-size", type=int, default=4)
    parser.add_argument("--device", default="auto", help="auto, cpu or cuda")
    parser.add_argument("--out", required=True, type=Path, help="predictions file (.csv or .parquet)")
    parser.set_defaults(func=run_predict)

    parser = subparsers.add_parser(
        "eval", help="AUC with bootstrap CIs, finding type/size breakdowns and figures from predictions",
        description="Evaluate predictions tables (CSV/Parquet from `python -m hct predict`) as in the paper: "
        "auc.csv, finding_type.csv, finding_size.csv, size_tertiles.csv, table3.csv (with a stage column), "
        "PNG and offline HTML figures.",
    )
    parser.add_argument("--predictions", nargs="+", required=True, type=Path, help="predictions files (one or more models)")
    parser.add_argument("--reference-model", help="model the others are compared with (default: the first model)")
    parser.add_argument("--out", required=True, type=Path, help="output folder")
    parser.add_argument("--n-boot", type=int, default=BootstrapOptions.n_boot,
                        help="bootstrap resamples (default 10000, as in the paper)")
    parser.add_argument("--seed", type=int, default=BootstrapOptions.seed, help="bootstrap seed")
    parser.add_argument("--alpha", type=float, default=BootstrapOptions.alpha, help="1 - confidence level (default 0.05)")
    parser.add_argument("--thresholds", type=float, nargs="+", default=list(SIZE_THRESHOLDS), help="finding-size thresholds")
    parser.add_argument("--params", type=_param, nargs="*", default=[], metavar="MODEL=MILLIONS",
                        help="parameter counts for Table 3, e.g. GMIC=2.80 HCT=1.73")
    parser.set_defaults(func=run_eval)


def run_predict(args: argparse.Namespace) -> int:
    """Handler of ``python -m hct predict``."""
    from tqdm import tqdm

    from hct.checkpoints import load_model
    from hct.data import load_records, parse_size
    from hct.devices import resolve_device

    device = resolve_device(args.device)
    records = load_records(args.data)
    if args.split:
        records = [r for r in records if r.split == args.split]
    if not records:
        raise EvaluationError(f"no images in {args.data}" + (f" with split {args.split!r}" if args.split else ""))
    frames = []
    for spec in args.checkpoint:
        model, card = load_model(spec, device=device)
        size = parse_size(args.size) if args.size else (card.input_size if card and card.input_size else None)
        if size is None:
            raise EvaluationError(f"{spec} has no input size on its card; pass --size HxW")
        with tqdm(total=len(records), desc=model.name, unit="img") as bar:
            frame = predict(
                model, records, size=tuple(size), **card_preprocessing(card), batch_size=args.batch_size,
                device=str(device),
                model_name=model.name if card is None else Path(spec).with_suffix("").name,
                checkpoint_sha256=card.weights_sha256 if card else "",
                progress=lambda done, total: bar.update(done - bar.n),
            )
        if card is not None and card.stage:
            frame["stage"] = card.stage
        frames.append(frame)
    table = pd.concat(frames, ignore_index=True)
    if "stage" in table.columns and table["stage"].isna().any():
        table = table.drop(columns="stage")  # a stage column must cover every row (Table 3) or none
    path = write_predictions(table, args.out, labelled=False)
    print(path)
    return 0


def run_eval(args: argparse.Namespace) -> int:
    """Handler of ``python -m hct eval``."""
    bootstrap = BootstrapOptions(n_boot=args.n_boot, seed=args.seed, alpha=args.alpha)
    frames = [read_predictions(path) for path in args.predictions]
    if len({"stage" in f.columns for f in frames}) > 1:
        raise EvaluationError("some predictions files have a 'stage' column and some do not; add it to all or none.")
    predictions = validate_predictions(pd.concat(frames, ignore_index=True), " + ".join(map(str, args.predictions)))
    report = evaluate(
        predictions, reference=args.reference_model, bootstrap=bootstrap,
        thresholds=args.thresholds, params=dict(args.params),
    )
    print(negatives_note(report.finding_type))
    for path in write_report(report, args.out):
        print(path)
    return 0
