"""Data commands: ``python -m hct phantom`` (write a synthetic data set) and ``python -m hct read``."""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
import time

from hct.data.phantom import BENCHMARK_SPLITS, COMPRESSIONS, MANIFEST_NAME, generate_phantom
from hct.data.preprocess import parse_size
from hct.data.reading import read_mammogram


def add_commands(subparsers: argparse._SubParsersAction) -> None:
    phantom = subparsers.add_parser("phantom", help="write the synthetic mammography benchmark (DICOM + manifest)")
    phantom.add_argument("--out", required=True, help="output folder")
    count = phantom.add_mutually_exclusive_group()
    count.add_argument("--n", type=int, help="number of images, split 80/10/10 by patient")
    count.add_argument("--splits", type=split_counts_arg, help="images per split (default: the benchmark, "
                       + ",".join(f"{k}={v}" for k, v in BENCHMARK_SPLITS.items()) + ")")
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


def split_counts_arg(text: str) -> dict[str, int]:
    """``train=2400,val=400,test=2000`` -> a dict (an argparse ``type``; the zoo command uses it too)."""
    try:
        return {key: int(value) for key, value in (part.split("=") for part in text.split(","))}
    except ValueError:
        raise argparse.ArgumentTypeError(f"splits must look like train=2400,val=400,test=2000, not {text!r}") from None


def _progress(done: int, total: int) -> None:
    print(f"\rphantom: {done}/{total} images", end="\n" if done == total else "", file=sys.stderr, flush=True)


def _phantom(args: argparse.Namespace) -> int:
    start = time.perf_counter()
    counts = args.n if args.n is not None else (args.splits or BENCHMARK_SPLITS)
    records = generate_phantom(counts, args.out, size=parse_size(args.size), seed=args.seed,
                               malignant_fraction=args.malignant_fraction, benign_fraction=args.benign_fraction,
                               workers=args.workers, compression=args.compression, progress=_progress)
    seconds = time.perf_counter() - start
    malignant = sum(r.label == 1 for r in records)
    print(f"wrote {len(records)} images ({malignant} malignant) and {args.out}/{MANIFEST_NAME} in {seconds:.1f} s "
          f"({1000 * seconds / len(records):.0f} s per 1,000 images, {args.workers} workers)")
    return 0


def _read(args: argparse.Namespace) -> int:
    meta = read_mammogram(args.path).meta
    print(json.dumps(dataclasses.asdict(meta), indent=2))
    if meta.warning:
        print(f"warning: {meta.warning}", file=sys.stderr)
    return 0
