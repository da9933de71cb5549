"""Data throughput: decode + preprocess of the built-in DICOMs (full and half size), phantom generation,
indexing the headers of a CBIS-DDSM-like tree of small DICOMs (first run, then from the cache), and
finding the boxes of full-size ROI masks.

Run from the repository root: ``python bench/data.py [--phantom-n 200] [--index-n 10000] [--workers 2]
[--masks-n 100] [--parts decode phantom index masks]``; prints Markdown tables.
"""

from __future__ import annotations

import argparse
import os
import platform
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from hct.data import FULL_SIZE, HALF_SIZE, builtin_samples, generate_phantom, index_dicoms, preprocess, read_mammogram
from hct.data.image.dicom_write import mammogram_dataset, write_dataset
from hct.data.sets.dicom_index import binary_boxes


def _cpu_model() -> str:
    with open("/proc/cpuinfo") as handle:
        return next((line.split(":", 1)[1].strip() for line in handle if line.startswith("model name")), "?")


def bench_decode() -> None:
    records = builtin_samples()
    start = time.perf_counter()
    images = [read_mammogram(r.path) for r in records]
    decode = (time.perf_counter() - start) / len(records)
    print(f"| decode 8 CBIS-DDSM RLE DICOMs (~4600x2800) | {decode * 1000:.0f} ms | {1 / decode:.1f} |")
    for name, size in (("full 3328x2560", FULL_SIZE), ("half 1664x1280", HALF_SIZE)):
        start = time.perf_counter()
        for image in images:
            preprocess(image, size=size)
        seconds = (time.perf_counter() - start) / len(images)
        print(f"| preprocess to {name} | {seconds * 1000:.0f} ms | {1 / seconds:.1f} |")


def bench_phantom(n: int, workers: int) -> None:
    with tempfile.TemporaryDirectory() as out:
        start = time.perf_counter()
        generate_phantom(n, out, size=HALF_SIZE, seed=0, workers=workers)
        seconds = time.perf_counter() - start
    print(f"| phantom 1664x1280 DICOM, n={n}, {workers} workers | {seconds / n * 1000:.0f} ms | {n / seconds:.1f} |")


def write_tree(root: Path, n: int) -> None:
    """``n`` 64x48 DICOMs laid out as TCIA's descriptive CBIS-DDSM download (one file per series)."""
    from pydicom.uid import generate_uid

    pixels = np.random.default_rng(0).integers(0, 4096, (64, 48), dtype=np.uint16)
    for i in range(n):
        subject, study, series = f"Mass-Training_P_{i:05d}_LEFT_CC", generate_uid(), generate_uid()
        folder = root / subject / f"07-20-2016-DDSM-NA-{study[-5:]}" / f"1.000000-full mammogram images-{series[-5:]}"
        folder.mkdir(parents=True)
        write_dataset(
            mammogram_dataset(
                pixels,
                PatientID=subject,
                StudyInstanceUID=study,
                SeriesInstanceUID=series,
                SeriesDescription="full mammogram images",
            ),
            folder / "1-1.dcm",
        )


def bench_masks(n: int, workers: int) -> None:
    """Boxes of ``n`` ROI masks of a CBIS-DDSM full image's size (uint8, 0/255, uncompressed, as
    downloaded), the second pass of ``data check --format cbis-ddsm``; the cropped images it skips by shape."""
    shape = (4600, 2900)  # about a CBIS-DDSM full mammogram
    with tempfile.TemporaryDirectory() as out:
        for i in range(n):
            mask = np.zeros(shape, np.uint8)
            mask[1000 + i : 1400 + i, 800:1300] = 255
            write_dataset(mammogram_dataset(mask, SeriesDescription="ROI mask images"), Path(out) / f"{i:04d}.dcm")
        index = index_dicoms(out, workers=workers)
        start = time.perf_counter()
        boxes = binary_boxes(index, list(index.table["path"]), workers)
        seconds = time.perf_counter() - start
        assert all(box is not None for box in boxes.values())
        print(
            f"| ROI mask boxes, {shape[0]}x{shape[1]} uint8 | {n:,} | {workers} | {seconds:.2f} | {n / seconds:.1f} |"
        )


def bench_index(n: int, workers: int) -> None:
    with tempfile.TemporaryDirectory() as out:
        write_tree(Path(out), n)
        for name in ("headers, no cache (first run)", "from the Parquet cache (second run)"):
            index = index_dicoms(out, workers=workers)
            assert len(index.table) == n and (index.table["error"] == "").all()
            print(
                f"| index {name} | {n:,} ({index.read:,} read) | {workers} | {index.seconds:.2f} | "
                f"{n / index.seconds:,.0f} |"
            )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--phantom-n", type=int, default=200)
    parser.add_argument("--index-n", type=int, default=10_000)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--masks-n", type=int, default=100)
    parts = ("decode", "phantom", "index", "masks")
    parser.add_argument("--parts", nargs="+", choices=parts, default=list(parts))
    args = parser.parse_args()
    print(
        f"machine: {os.cpu_count()} CPUs, {_cpu_model()}, torch {torch.__version__} "
        f"({torch.get_num_threads()} threads), Python {platform.python_version()}"
    )
    if {"decode", "phantom"} & set(args.parts):
        print("| step | per image | images/s |\n|---|---|---|")
    if "decode" in args.parts:
        bench_decode()
    if "phantom" in args.parts:
        bench_phantom(args.phantom_n, args.workers)
    if {"index", "masks"} & set(args.parts):
        print("| step | files | workers | seconds | files/s |\n|---|---|---|---|---|")
    if "index" in args.parts:
        bench_index(args.index_n, args.workers)
    if "masks" in args.parts:
        bench_masks(args.masks_n, args.workers)


if __name__ == "__main__":
    main()
