"""Table 1 + Table A2 end to end, timed, against the naive procedure; prints a markdown section.

    python bench/table1.py --data /tmp/ph --split test --n 100 --size 3328x2560 --device cpu \
        --models checkpoints/gmic.safetensors checkpoints/def_gmic.safetensors \
                 checkpoints/hct_performer_relu.safetensors --out /tmp/table1 --results bench/RESULTS.md

Three timings, decoding included:
- baseline (naive): what three ``python -m hct erf`` runs (one per subset) cost before the engine's
  work: every pass decodes and preprocesses its image and back-propagates through the whole image,
  for each model and subset (3 N passes per model). Measured on ``--baseline-images`` images per
  model and extrapolated to 3 N.
- table, empty cache: ``hct.explain.erf.table1`` as ``python -m hct table1`` runs it (subsets sharing
  gradients, each image decoded once for all models, GMIC windowed), from the records to the files.
- table, cache filled: the same again.
On CUDA (``--device cuda``) TF32 is off (the engine's own setting) and cudnn autotuning is off, so
no batch shape is re-tuned. ``--results FILE`` replaces this device's section of FILE (between its
markers) and copies the grid to ``bench/figures/table1_<device>.png``.
"""

from __future__ import annotations

import argparse
import datetime
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

import torch

from hct.data import PreprocessedFiles, parse_size
from hct.explain import ERFEngine, GradientCache, compute_erf
from hct.explain.cli import dataset_records, laterality, model_and_label
from hct.explain.display.outputs import write_table1
from hct.explain.erf.table1 import compute_table1, sample_table1
from hct.runtime.devices import describe_device, resolve_device
from hct.runtime.distributed import DistContext

ROOT = Path(__file__).resolve().parents[1]


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def baseline(models: dict, paths: list[str], size, device: torch.device) -> dict[str, tuple[float, float]]:
    """Per model: (seconds to decode and preprocess one image, seconds for one full-image pass)."""
    out = {}
    for label, model in models.items():
        decode = compute = 0.0
        for path in paths:
            start = time.perf_counter()
            image = PreprocessedFiles([path], size, "acquired")[0]
            decode += time.perf_counter() - start
            _sync(device)
            start = time.perf_counter()
            compute_erf(model, [image], engine=ERFEngine(windowed=False, batch_size=1))
            _sync(device)
            compute += time.perf_counter() - start
        out[label] = (decode / len(paths), compute / len(paths))
        print(
            f"baseline {label}: {out[label][0]:.2f} s decode, {out[label][1]:.2f} s pass", file=sys.stderr, flush=True
        )
    return out


def timed_table(args, models: dict, size, cache_dir: Path, out: Path):
    """The whole table, records to files; returns (seconds, table)."""
    _sync(args.device)
    start = time.perf_counter()
    records = dataset_records(args.data, args.split)
    sample = sample_table1(len(records), lambda i: laterality(records[i]), args.n, args.seed)
    chosen = [records[i] for i in sample.order]
    images = PreprocessedFiles([r.path for r in chosen], size, "acquired")
    engine = ERFEngine(
        batch_size=args.batch_size if args.batch_size == "auto" else int(args.batch_size),
        cache=GradientCache(cache_dir),
        workers=args.workers,
        context=DistContext(device=args.device),
        progress=lambda done, total: print(
            f"table: {done}/{total} images, {time.perf_counter() - start:.0f} s", file=sys.stderr, flush=True
        ),
    )
    table = compute_table1(
        models,
        images,
        sample,
        image_ids=[r.image_id for r in chosen],
        engine=engine,
        settings={"size": f"{size[0]}x{size[1]}", "mode": "acquired", "data": args.data, "split": args.split},
    )
    write_table1(table, out)
    _sync(args.device)
    return time.perf_counter() - start, table


def machine(device: torch.device) -> str:
    cores = os.cpu_count()
    return (
        f"{describe_device(device)}; `nproc` = {cores}; torch {torch.__version__}; "
        f"{datetime.datetime.now(datetime.timezone.utc):%Y-%m-%d %H:%M} UTC"
    )


def section(args, size, base: dict, cold: float, warm: float | None, table, paths_count: int) -> str:
    n = args.n
    union = len(table.sample.order)
    naive = sum(3 * n * (decode + compute) for decode, compute in base.values())
    lines = [
        f"Machine: {machine(args.device)}",
        "",
        f"Command: `python {' '.join(sys.argv)}`",
        "",
        f"N = {n} per subset, {union} distinct images (of {paths_count} in the split), {size[0]}x{size[1]}, "
        f"seed {args.seed}, batch {args.batch_size}, decoding workers {args.workers}, torch threads "
        f"{torch.get_num_threads()}, load average {os.getloadavg()[0]:.1f} at the end.",
        "",
        "| model | decode + preprocess s/image | full-image pass s/image | naive 3N passes s |",
        "|---|---|---|---|",
    ]
    for label, (decode, compute) in base.items():
        lines.append(f"| {label} | {decode:.3f} | {compute:.3f} | {3 * n * (decode + compute):.0f} |")
    lines += [
        "",
        "| procedure | wall time |",
        "|---|---|",
        f"| naive (extrapolated from {args.baseline_images} images per model) | {naive / 60:.1f} min |",
        f"| `python -m hct table1`, empty cache | {cold / 60:.2f} min ({naive / cold:.1f}x faster) |",
    ]
    if warm is not None:
        lines.append(f"| the same, cache filled | {warm:.1f} s |")
    metrics = table.metrics()
    lines += [
        "",
        "| model | subset | area 50% | area 99% | spread rows | spread cols | centroid row | centroid col | "
        "R² rows | R² cols | breast share |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for _, row in metrics.iterrows():
        cells = [
            row[k]
            for k in (
                "area_share_50",
                "area_share_99",
                "spread_rows",
                "spread_cols",
                "centroid_row",
                "centroid_col",
                "gaussian_r2_over_rows",
                "gaussian_r2_over_columns",
                "breast_share",
            )
        ]
        lines.append(
            f"| {row['model']} | {row['subset']} | "
            + " | ".join("" if c != c else (f"{c:.0f}" if abs(c) >= 10 else f"{c:.3f}") for c in cells)
            + " |"
        )
    lines += [
        "",
        f"The `right - left` rows give the centroid shift between the right and left subsets in input "
        f"pixels (columns: positive = toward the image's right). Grid: `bench/figures/table1_{args.device.type}.png`.",
    ]
    return "\n".join(lines)


def replace_section(path: Path, device: str, text: str) -> None:
    begin, end = f"<!-- bench/table1.py {device}: begin -->", f"<!-- bench/table1.py {device}: end -->"
    content = path.read_text()
    if begin not in content:
        raise SystemExit(f"{path} has no '{begin}' marker; add the two markers where the section goes")
    head, rest = content.split(begin, 1)
    path.write_text(f"{head}{begin}\n{text}\n{end}{rest.split(end, 1)[1]}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", required=True, help="a phantom folder or manifest (python -m hct phantom ...)")
    parser.add_argument("--split", default="test")
    parser.add_argument("--models", nargs="+", required=True, help="checkpoints (or registry names)")
    parser.add_argument("--n", type=int, default=100)
    parser.add_argument("--size", default="3328x2560")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--batch-size", default="auto")
    parser.add_argument("--workers", type=int, default=0, help="processes decoding ahead (ERFEngine.workers)")
    parser.add_argument(
        "--threads",
        type=int,
        default=None,
        help="torch CPU threads (default: all cores; on a machine shared with other work, 1 can be faster)",
    )
    parser.add_argument("--baseline-images", type=int, default=2, help="images per model timed for the naive figure")
    parser.add_argument("--no-warm", action="store_true", help="skip the run with the cache filled")
    parser.add_argument("--out", required=True, help="where the table's files go")
    parser.add_argument("--results", default=None, help="replace this device's section of this markdown file")
    args = parser.parse_args()
    args.device = resolve_device(args.device)
    if args.threads:
        torch.set_num_threads(args.threads)
    if args.device.type == "cuda":
        torch.backends.cudnn.benchmark = False  # no autotuning per batch shape
    size = parse_size(args.size)
    models = dict(reversed(model_and_label(spec, args.device)) for spec in args.models)
    records = dataset_records(args.data, args.split)
    sample = sample_table1(len(records), lambda i: laterality(records[i]), args.n, args.seed)
    base = baseline(models, [records[i].path for i in sample.order[: args.baseline_images]], size, args.device)
    with tempfile.TemporaryDirectory(prefix="table1-cache-") as cache:
        cold, table = timed_table(args, models, size, Path(cache), Path(args.out))
        warm = None if args.no_warm else timed_table(args, models, size, Path(cache), Path(args.out))[0]
    text = section(args, size, base, cold, warm, table, len(records))
    print(text)
    if args.results:
        replace_section(Path(args.results), args.device.type, text)
        figures = ROOT / "bench" / "figures"
        figures.mkdir(exist_ok=True)
        shutil.copy(Path(args.out) / "table1.png", figures / f"table1_{args.device.type}.png")


if __name__ == "__main__":
    main()
