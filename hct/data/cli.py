"""Data commands: ``python -m hct phantom`` (write a synthetic data set), ``python -m hct read`` and
``python -m hct data check`` (what of a downloaded public data set is usable; a manifest to train on)."""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
import time

from hct.data.options import BENCHMARK_SPLITS, COMPRESSIONS, FORMATS


def add_commands(subparsers: argparse._SubParsersAction) -> None:
    phantom = subparsers.add_parser("phantom", help="write the synthetic mammography benchmark (DICOM + manifest)")
    phantom.add_argument("--out", required=True, help="output folder")
    count = phantom.add_mutually_exclusive_group()
    count.add_argument("--n", type=int, help="number of images, split 80/10/10 by patient")
    count.add_argument(
        "--splits",
        type=split_counts_arg,
        help="images per split (default: the benchmark, "
        + ",".join(f"{k}={v}" for k, v in BENCHMARK_SPLITS.items())
        + ")",
    )
    phantom.add_argument("--size", default="1664x1280", help="HxW, 'half' or 'full' (default 1664x1280)")
    phantom.add_argument("--seed", type=int, default=0)
    phantom.add_argument("--malignant-fraction", type=float, default=0.26, help="share of breasts (default 0.26)")
    phantom.add_argument("--benign-fraction", type=float, default=0.15, help="share of breasts (default 0.15)")
    phantom.add_argument("--compression", choices=COMPRESSIONS, default="rle", help="lossless RLE (default) or none")
    phantom.add_argument("--workers", type=int, default=2)
    phantom.set_defaults(func=_phantom)
    read = subparsers.add_parser("read", help="print a mammogram's safe metadata as JSON")
    read.add_argument("path")
    read.set_defaults(func=_read)
    data = subparsers.add_parser("data", help="public data sets as downloaded")
    data = data.add_subparsers(dest="action", required=True)
    check = data.add_parser(
        "check",
        help="report what of a data set is there and usable; optionally write a manifest to train on",
        description="Index the data set's DICOM files by their headers (cached next to the data), match them "
        "to its tables and report images found, missing, unreadable, and counts by label, finding type and split. "
        "Exits 1 when nothing usable was found.",
    )
    check.add_argument(
        "source",
        help="the folder the data set was downloaded to (or any folder above it); for "
        "optimam the OMI-DB data folder; for manifest a manifest CSV",
    )
    check.add_argument("--format", required=True, choices=FORMATS)
    check.add_argument(
        "--tables",
        nargs="+",
        default=(),
        help="the data set's tables if not under SOURCE: CBIS-DDSM "
        "case description CSVs, VinDr-Mammo finding_annotations.csv, CMMD clinical spreadsheet",
    )
    check.add_argument("--images", help="optimam: the image folder (default: SOURCE)")
    check.add_argument("--malignant-birads", type=int, nargs="+", default=[5], help="vindr: BI-RADS counted malignant")
    check.add_argument("--cache-dir", help="where to keep the DICOM index (default: next to the data if writable)")
    check.add_argument("--workers", type=int, default=None, help="processes reading headers (default: all CPUs)")
    check.add_argument("--examples", type=int, default=5, help="missing/unreadable items named (default 5)")
    check.add_argument("--write-manifest", help="write the labelled images, with train/val/test splits, to this CSV")
    check.set_defaults(func=_check)


def split_counts_arg(text: str) -> dict[str, int]:
    """``train=2400,val=400,test=2000`` -> a dict (an argparse ``type``; the zoo command uses it too)."""
    try:
        return {key: int(value) for key, value in (part.split("=") for part in text.split(","))}
    except ValueError:
        raise argparse.ArgumentTypeError(f"splits must look like train=2400,val=400,test=2000, not {text!r}") from None


def _progress(done: int, total: int) -> None:
    print(f"\rphantom: {done}/{total} images", end="\n" if done == total else "", file=sys.stderr, flush=True)


def _phantom(args: argparse.Namespace) -> int:
    from hct.data.image.preprocess import parse_size
    from hct.data.phantom.generate import generate_phantom
    from hct.data.sets.manifest import MANIFEST_NAME

    start = time.perf_counter()
    counts = args.n if args.n is not None else (args.splits or BENCHMARK_SPLITS)
    records = generate_phantom(
        counts,
        args.out,
        size=parse_size(args.size),
        seed=args.seed,
        malignant_fraction=args.malignant_fraction,
        benign_fraction=args.benign_fraction,
        workers=args.workers,
        compression=args.compression,
        progress=_progress,
    )
    seconds = time.perf_counter() - start
    malignant = sum(r.label == 1 for r in records)
    print(
        f"wrote {len(records)} images ({malignant} malignant) and {args.out}/{MANIFEST_NAME} in {seconds:.1f} s "
        f"({1000 * seconds / len(records):.0f} s per 1,000 images, {args.workers} workers)"
    )
    return 0


def _read(args: argparse.Namespace) -> int:
    from hct.data.image.reading import read_mammogram

    meta = read_mammogram(args.path).meta
    print(json.dumps(dataclasses.asdict(meta), indent=2))
    if meta.warning:
        print(f"warning: {meta.warning}", file=sys.stderr)
    return 0


def _check(args: argparse.Namespace) -> int:
    from hct.data.sets.check import check_data, write_checked_manifest

    report = check_data(
        args.source,
        args.format,
        tables=args.tables,
        images=args.images,
        cache_dir=args.cache_dir,
        workers=args.workers,
        progress=_progress_bar(),
        malignant_birads=tuple(args.malignant_birads),
    )
    print("\n".join(report.lines(args.examples)))
    if not report.usable:
        return 1
    if args.write_manifest:
        path, splits = write_checked_manifest(report, args.write_manifest)
        print(
            f"wrote {path}: {sum(splits.values()):,} labelled images ("
            + ", ".join(f"{name} {count:,}" for name, count in sorted(splits.items()))
            + ")"
        )
    return 0


def _progress_bar():
    """A ``progress(done, total)`` callback drawing a tqdm bar on stderr, one per pass over the files."""
    from tqdm import tqdm

    bar = None

    def update(done: int, total: int) -> None:
        nonlocal bar
        if bar is None or total != bar.total or done < bar.n:
            if bar is not None:
                bar.close()
            bar = tqdm(total=total, unit="file", desc="reading DICOM files", mininterval=0.5)
        bar.update(done - bar.n)
        if done == total:
            bar.close()

    return update
