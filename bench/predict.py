"""Prediction throughput: images/s of ``hct.eval.predict`` (decode + preprocess + forward) over phantom
DICOMs, with 0 and more decoding workers, at one or more sizes; and ``python -m hct predict`` in one
process against ``torchrun`` with two processes on the same images (wall time of the whole command,
process start and model loading included). Prints markdown for bench/RESULTS.md. Usage:

    python bench/predict.py --device cpu --n 16 --sizes 1664x1280 --workers 0 2 --torchrun
"""

from __future__ import annotations

import argparse
import datetime
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch

from hct.data import generate_phantom, parse_size
from hct.eval import predict
from hct.models import create_model
from hct.runtime.devices import describe_device, resolve_device

ROOT = Path(__file__).resolve().parents[1]


def images_per_second(
    model: torch.nn.Module, records: list, size: tuple[int, int], batch: int, workers: int, device: torch.device
) -> float:
    """Images/s of one ``predict`` pass over ``records`` (after a one-batch warm-up)."""
    predict(model, records[:batch], size=size, batch_size=batch, device=str(device))
    if device.type == "cuda":
        torch.cuda.synchronize()
    start = time.perf_counter()
    predict(model, records, size=size, batch_size=batch, workers=workers, device=str(device))
    if device.type == "cuda":
        torch.cuda.synchronize()
    return len(records) / (time.perf_counter() - start)


def command_seconds(argv: list[str], env: dict) -> float:
    start = time.perf_counter()
    run = subprocess.run(argv, cwd=ROOT, env=env, capture_output=True, text=True)
    if run.returncode:
        raise SystemExit(run.stderr[-3000:])
    return time.perf_counter() - start


def torchrun_rows(data: Path, model: str, size: str, batch: int, out: Path) -> list[str]:
    """One process (all threads) against torchrun with 2 processes (threads split between them)."""
    args = [
        "predict",
        "--checkpoint",
        model,
        "--data",
        str(data),
        "--size",
        size,
        "--batch-size",
        str(batch),
        "--device",
        "cpu",
    ]
    threads = os.cpu_count() or 1
    one = command_seconds(
        [sys.executable, "-m", "hct", *args, "--out", str(out / "one.csv")],
        {**os.environ, "OMP_NUM_THREADS": str(threads)},
    )
    two = command_seconds(
        [
            sys.executable,
            "-m",
            "torch.distributed.run",
            "--nnodes",
            "1",
            "--nproc_per_node",
            "2",
            "--master_addr",
            "127.0.0.1",
            "--master_port",
            "29533",
            "-m",
            "hct",
            "--",
            *args,
            "--out",
            str(out / "two.csv"),
        ],
        {**os.environ, "OMP_NUM_THREADS": str(max(1, threads // 2))},
    )
    same = (out / "one.csv").read_text() == (out / "two.csv").read_text()
    return [
        f"| 1 process, {threads} threads | {one:.1f} | 1.00 | |",
        f"| torchrun, 2 processes x {max(1, threads // 2)} threads | {two:.1f} | {one / two:.2f} | "
        f"{'identical' if same else 'DIFFERENT'} |",
    ]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--device", default="auto")
    parser.add_argument("--n", type=int, default=16, help="phantom images predicted")
    parser.add_argument("--sizes", nargs="+", default=["1664x1280"])
    parser.add_argument("--models", nargs="+", default=["gmic", "def_gmic", "hct_performer_relu"])
    parser.add_argument("--batch", type=int, default=4)
    parser.add_argument("--workers", type=int, nargs="+", default=[0, 2])
    parser.add_argument("--torchrun", action="store_true", help="also time torchrun with 2 CPU processes")
    args = parser.parse_args()
    device = resolve_device(args.device)
    with tempfile.TemporaryDirectory(prefix="hct-bench-predict-") as folder:
        data = Path(folder) / "phantom"
        records = generate_phantom({"test": args.n}, data, size=(1664, 1280), workers=min(8, os.cpu_count() or 1))
        print(
            f"Machine: {describe_device(device)}; `nproc` = {os.cpu_count()}; torch {torch.__version__}; "
            f"{datetime.datetime.now(datetime.timezone.utc):%Y-%m-%d %H:%M} UTC\n"
        )
        print(f"Command: `python {' '.join(sys.argv)}`\n")
        print(f"{args.n} phantom DICOMs (1664x1280, RLE), batch {args.batch}, random-init weights, float32.\n")
        print("| model | size | " + " | ".join(f"images/s, {w} workers" for w in args.workers) + " |")
        print("|---|---|" + "---|" * len(args.workers))
        for name in args.models:
            model = create_model(name).to(device).eval()
            for text in args.sizes:
                size = parse_size(text)
                rates = [images_per_second(model, records, size, args.batch, w, device) for w in args.workers]
                print(f"| {name} | {text} | " + " | ".join(f"{r:.2f}" for r in rates) + " |", flush=True)
        if args.torchrun:
            print(
                f"\n`python -m hct predict` of {args.models[0]} over the {args.n} images at {args.sizes[0]}, "
                "wall time of the command:\n"
            )
            print("| run | s | speed-up | table |")
            print("|---|---|---|---|")
            for row in torchrun_rows(data, args.models[0], args.sizes[0], args.batch, Path(folder)):
                print(row)


if __name__ == "__main__":
    main()
