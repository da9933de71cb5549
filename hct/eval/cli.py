"""``python -m hct predict`` (a predictions table; also under torchrun) and ``python -m hct eval`` (AUC
tables and figures from one or more predictions files)."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import TYPE_CHECKING

from hct.errors import EvaluationError
from hct.eval.options import SIZE_THRESHOLDS
from hct.eval.roc import BootstrapOptions

if TYPE_CHECKING:
    import pandas as pd


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
        "predict",
        help="malignancy probability of every image of a data set, one row per (model, image)",
        description="Run checkpoints over a data set (batched, on the GPU when present; images preprocessed as each "
        "checkpoint's card says) and write a predictions table (CSV, or Parquet for a .parquet path) for "
        "`python -m hct eval`. Under torchrun the images are shared out over the processes and rank 0 writes "
        "the table, equal to one process's.",
    )
    parser.add_argument(
        "--checkpoint",
        nargs="+",
        required=True,
        help="checkpoint paths (or registry names: random init; nyu_gmic_ensemble: "
        "NYU's five imported GMIC models, averaged)",
    )
    parser.add_argument(
        "--data",
        required=True,
        help="a manifest .csv, a phantom folder, a folder of images, "
        "'samples' or pacs:STUDY_UID (see `python -m hct pacs`)",
    )
    parser.add_argument("--split", default=None, help="only the records of this split (train, val, test)")
    parser.add_argument("--size", default=None, help="model input HxW (default: each checkpoint's training size)")
    parser.add_argument("--batch-size", type=int, default=4)
    parser.add_argument("--workers", type=int, default=0, help="processes decoding images ahead (0: none)")
    parser.add_argument("--device", default="auto", help="auto, cpu or cuda (under torchrun: each rank's own GPU)")
    parser.add_argument("--out", required=True, type=Path, help="predictions file (.csv or .parquet)")
    parser.set_defaults(func=run_predict)

    parser = subparsers.add_parser(
        "eval",
        help="AUC with bootstrap CIs, finding type/size breakdowns and figures from predictions",
        description="Evaluate predictions tables (CSV/Parquet from `python -m hct predict`) as in the paper: "
        "auc.csv, finding_type.csv, finding_size.csv, size_tertiles.csv, table3.csv (with a stage column), "
        "PNG and offline HTML figures.",
    )
    parser.add_argument(
        "--predictions", nargs="+", required=True, type=Path, help="predictions files (one or more models)"
    )
    parser.add_argument("--reference-model", help="model the others are compared with (default: the first model)")
    parser.add_argument("--out", required=True, type=Path, help="output folder")
    parser.add_argument(
        "--n-boot",
        type=int,
        default=BootstrapOptions.n_boot,
        help="bootstrap resamples (default 10000, as in the paper)",
    )
    parser.add_argument("--seed", type=int, default=BootstrapOptions.seed, help="bootstrap seed")
    parser.add_argument(
        "--alpha", type=float, default=BootstrapOptions.alpha, help="1 - confidence level (default 0.05)"
    )
    parser.add_argument(
        "--thresholds", type=float, nargs="+", default=list(SIZE_THRESHOLDS), help="finding-size thresholds"
    )
    parser.add_argument(
        "--params",
        type=_param,
        nargs="*",
        default=[],
        metavar="MODEL=MILLIONS",
        help="parameter counts for Table 3, e.g. GMIC=2.80 HCT=1.73",
    )
    parser.set_defaults(func=run_eval)


def run_predict(args: argparse.Namespace) -> int:
    """Handler of ``python -m hct predict`` (also under torchrun)."""
    from hct.data import load_records
    from hct.eval.predictions import write_predictions
    from hct.runtime.devices import resolve_device
    from hct.runtime.distributed import process_group

    records = load_records(args.data)
    if args.split:
        records = [r for r in records if r.split == args.split]
    if not records:
        raise EvaluationError(f"no images in {args.data}" + (f" with split {args.split!r}" if args.split else ""))
    with process_group(resolve_device(args.device)) as context:
        frames = [_predict_checkpoint(spec, records, args, context) for spec in args.checkpoint]
    if not context.is_main:
        return 0
    import pandas as pd

    table = pd.concat(frames, ignore_index=True)
    if "stage" in table.columns and table["stage"].isna().any():
        table = table.drop(columns="stage")  # a stage column must cover every row (Table 3) or none
    print(write_predictions(table, args.out, labelled=False))
    return 0


def _predict_checkpoint(spec: str, records: list, args: argparse.Namespace, context) -> pd.DataFrame | None:
    """One checkpoint's predictions (rank 0's gathered table under torchrun, ``None`` on other ranks)."""
    from tqdm import tqdm

    from hct.data import parse_size
    from hct.eval.predictions import card_preprocessing, predict
    from hct.models.checkpoints import load_model
    from hct.models.ref import ref_of
    from hct.models.scores import input_mode

    model, card = load_model(spec, device=context.device)
    size = parse_size(args.size) if args.size else (card.input_size if card and card.input_size else None)
    if size is None:
        raise EvaluationError(f"{spec} has no input size on its card; pass --size HxW")
    label = model.name if card is None else Path(spec).with_suffix("").name
    with tqdm(total=len(records), desc=label, unit="img", disable=not context.is_main) as bar:
        frame = predict(
            model,
            records,
            size=tuple(size),
            **card_preprocessing(card, input_mode(model)),
            batch_size=args.batch_size,
            workers=args.workers,
            device=str(context.device),
            ref=ref_of(model, label),
            context=context,
            progress=lambda done, total: bar.update(min(done * context.world, len(records)) - bar.n),  # rank 0's share
        )
    if frame is not None and card is not None and card.stage:
        frame["stage"] = card.stage
    return frame


def run_eval(args: argparse.Namespace) -> int:
    """Handler of ``python -m hct eval``."""
    import pandas as pd

    from hct.eval.breakdowns import negatives_note
    from hct.eval.evaluation import evaluate, write_report
    from hct.eval.predictions import read_predictions, validate_predictions

    bootstrap = BootstrapOptions(n_boot=args.n_boot, seed=args.seed, alpha=args.alpha)
    frames = [read_predictions(path) for path in args.predictions]
    if len({"stage" in f.columns for f in frames}) > 1:
        raise EvaluationError("some predictions files have a 'stage' column and some do not; add it to all or none.")
    predictions = validate_predictions(pd.concat(frames, ignore_index=True), " + ".join(map(str, args.predictions)))
    report = evaluate(
        predictions,
        reference=args.reference_model,
        bootstrap=bootstrap,
        thresholds=args.thresholds,
        params=dict(args.params),
    )
    print(negatives_note(report.finding_type))
    for path in write_report(report, args.out):
        print(path)
    return 0
