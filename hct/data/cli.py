"""Data commands: ``python -m hct phantom`` (write a synthetic data set) and ``python -m hct read``."""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
import time

from hct.data.phantom import MANIFEST_NAME, generate_phantom
from hct.data.preprocess import parse_size
from hct.data.reading import read_mammogram


def add_commands(subparsers: argparse._SubParsersAction) -> None:
    phantom = subparsers.add_parser("phantom", help="write a synthetic mammography data set (DICOM + manifest)")
    phantom.add_argument("--n", type=int, required=True, help="number of images")
    phantom.add_argument("--out", required=True, help="output folder")
    phantom.add_argument("--size", default="1664x1280", help="HxW, 'half' or 'full' (default 1664x1280)")
    phantom.add_argument("--seed", type=int, default=0)
    phantom.add_argument("--malignant-fraction", type=float, default=0.3)
    phantom.add_argument("--workers", type=int, default=2)
    phantom.set_defaults(func=_phantom)
    read = subparsers.add_parser("read", help="print a mammogram's safe metadata as JSON")
    read.add_argument("path")
    read.set_defaults(func=_read)


def _phantom(args: argparse.Namespace) -> int:
    start = time.perf_counter()
    records = generate_phantom(args.n, args.out, size=parse_size(args.size), seed=args.seed,
                               malignant_fraction=args.malignant_fraction, workers=args.workers)
    seconds = time.perf_counter() - start
    malignant = sum(r.label == 1 for r in records)
    print(f"wrote {len(records)} images ({malignant} malignant) and {args.out}/{MANIFEST_NAME} "
          f"in {seconds:.1f} s ({len(records) / seconds:.1f} images/s)")
    return 0


def _read(args: argparse.Namespace) -> int:
    meta = read_mammogram(args.path).meta
    print(json.dumps(dataclasses.asdict(meta), indent=2))
    if meta.warning:
        print(f"warning: {meta.warning}", file=sys.stderr)
    return 0
