"""Data throughput: decode + preprocess of the built-in DICOMs (full and half size), phantom generation.

Run from the repository root: ``python bench/data.py [--phantom-n 200] [--workers 2]``; prints a Markdown table.
"""

from __future__ import annotations

import argparse
import os
import platform
import tempfile
import time

import torch

from hct.data import FULL_SIZE, HALF_SIZE, builtin_samples, generate_phantom, preprocess, read_mammogram


def _cpu_model() -> str:
    with open("/proc/cpuinfo") as handle:
        return next((line.split(":", 1)[1].strip() for line in handle if line.startswith("model name")), "?")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--phantom-n", type=int, default=200)
    parser.add_argument("--workers", type=int, default=2)
    args = parser.parse_args()
    print(f"machine: {os.cpu_count()} CPUs, {_cpu_model()}, torch {torch.__version__} "
          f"({torch.get_num_threads()} threads), Python {platform.python_version()}")
    records = builtin_samples()
    start = time.perf_counter()
    images = [read_mammogram(r.path) for r in records]
    decode = (time.perf_counter() - start) / len(records)
    print("| step | per image | images/s |\n|---|---|---|")
    print(f"| decode 8 CBIS-DDSM RLE DICOMs (~4600x2800) | {decode * 1000:.0f} ms | {1 / decode:.1f} |")
    for name, size in (("full 3328x2560", FULL_SIZE), ("half 1664x1280", HALF_SIZE)):
        start = time.perf_counter()
        for image in images:
            preprocess(image, size=size)
        seconds = (time.perf_counter() - start) / len(images)
        print(f"| preprocess to {name} | {seconds * 1000:.0f} ms | {1 / seconds:.1f} |")
    with tempfile.TemporaryDirectory() as out:
        start = time.perf_counter()
        generate_phantom(args.phantom_n, out, size=HALF_SIZE, seed=0, workers=args.workers)
        seconds = time.perf_counter() - start
    print(f"| phantom 1664x1280 DICOM, n={args.phantom_n}, {args.workers} workers | "
          f"{seconds / args.phantom_n * 1000:.0f} ms | {args.phantom_n / seconds:.1f} |")


if __name__ == "__main__":
    main()
