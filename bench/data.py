"""Data throughput: decode + preprocess of the built-in DICOMs (full and half size), phantom generation,
and indexing the headers of a CBIS-DDSM-like tree of small DICOMs (first run, then from the cache).

Run from the repository root: ``python bench/data.py [--phantom-n 200] [--index-n 10000] [--workers 2]
[--parts decode phantom index]``; prints Markdown tables.
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
    from pydicom.dataset import Dataset, FileMetaDataset
    from pydicom.uid import ExplicitVRLittleEndian, generate_uid

    ds = Dataset()
    ds.file_meta = FileMetaDataset()
    ds.file_meta.MediaStorageSOPClassUID = ds.SOPClassUID = "1.2.840.10008.5.1.4.1.1.1.2"
    ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds.Modality, ds.SamplesPerPixel, ds.PhotometricInterpretation = "MG", 1, "MONOCHROME2"
    ds.Rows, ds.Columns, ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 64, 48, 16, 16, 15, 0
    ds.SeriesDescription = "full mammogram images"
    ds.PixelData = np.random.default_rng(0).integers(0, 4096, (64, 48), dtype=np.uint16).tobytes()
    for i in range(n):
        subject = f"Mass-Training_P_{i:05d}_LEFT_CC"
        ds.PatientID, ds.StudyInstanceUID, ds.SeriesInstanceUID = subject, generate_uid(), generate_uid()
        ds.SOPInstanceUID = ds.file_meta.MediaStorageSOPInstanceUID = generate_uid()
        folder = root / subject / f"07-20-2016-DDSM-NA-{ds.StudyInstanceUID[-5:]}" / \
            f"1.000000-full mammogram images-{ds.SeriesInstanceUID[-5:]}"
        folder.mkdir(parents=True)
        ds.save_as(folder / "1-1.dcm", enforce_file_format=True)


def bench_index(n: int, workers: int) -> None:
    with tempfile.TemporaryDirectory() as out:
        write_tree(Path(out), n)
        print("| step | files | workers | seconds | files/s |\n|---|---|---|---|---|")
        for name in ("headers, no cache (first run)", "from the Parquet cache (second run)"):
            index = index_dicoms(out, workers=workers)
            assert len(index.table) == n and (index.table["error"] == "").all()
            print(f"| index {name} | {n:,} ({index.read:,} read) | {workers} | {index.seconds:.2f} | "
                  f"{n / index.seconds:,.0f} |")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--phantom-n", type=int, default=200)
    parser.add_argument("--index-n", type=int, default=10_000)
    parser.add_argument("--workers", type=int, default=2)
    parts = ("decode", "phantom", "index")
    parser.add_argument("--parts", nargs="+", choices=parts, default=list(parts))
    args = parser.parse_args()
    print(f"machine: {os.cpu_count()} CPUs, {_cpu_model()}, torch {torch.__version__} "
          f"({torch.get_num_threads()} threads), Python {platform.python_version()}")
    if {"decode", "phantom"} & set(args.parts):
        print("| step | per image | images/s |\n|---|---|---|")
    if "decode" in args.parts:
        bench_decode()
    if "phantom" in args.parts:
        bench_phantom(args.phantom_n, args.workers)
    if "index" in args.parts:
        bench_index(args.index_n, args.workers)


if __name__ == "__main__":
    main()
