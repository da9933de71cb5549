"""``python -m hct erf`` (ERF of several models over N images) and ``python -m hct explain`` (one image)."""

from __future__ import annotations

import argparse
import csv
import random
import sys
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch

from hct.checkpoints import load_model
from hct.data import MODES, load_records, parse_size
from hct.devices import resolve_device
from hct.errors import ConfigError
from hct.explain.attention_maps import attention_map
from hct.explain.attribution import METHODS, attribute
from hct.explain.erf import SUBSETS, ERFResult, compute_erf, curves_frame, subset_laterality
from hct.explain.figures import erf_curves, erf_heatmaps, erf_summary_figure, heatmap_overlay
from hct.explain.metrics import erf_metrics
from hct.reports import write_figures_html

def parse_pair(text: str, what: str) -> tuple[int, int]:
    try:
        row, col = (int(v) for v in text.split(","))
    except ValueError:
        raise ConfigError(f"{what} must be ROW,COL such as 12,10, got {text!r}") from None
    return row, col


def model_and_label(spec: str, device: torch.device) -> tuple[torch.nn.Module, str]:
    """A registry name (random initialisation, said on stderr) or a checkpoint path -> (model, label)."""
    model, card = load_model(spec, device=device)
    if card is None:
        print(f"{spec}: random initialisation (no checkpoint): the maps show the architecture, not a trained model",
              file=sys.stderr)
        return model, spec
    stem = Path(spec).with_suffix("").name
    return model, stem if stem == card.architecture else f"{card.architecture}-{stem}"


def image_sources(images: str) -> list[tuple[str, str | None]]:
    """``(path, laterality or None)`` of every image of ``images`` (see ``hct.data.load_records``)."""
    return [(str(r.path), r.laterality or None) for r in load_records(images)]


def sample_images(sources: list[tuple[str, str | None]], n: int, subset: str, seed: int) -> tuple[list[str], list[str]]:
    """``n`` random images of ``subset`` (lateralities missing from a source are read from the file)."""
    from hct.data import read_mammogram

    wanted = subset_laterality(subset)
    order = list(range(len(sources)))
    random.Random(seed).shuffle(order)
    paths, sides = [], []
    for i in order:
        path, side = sources[i]
        side = side or read_mammogram(path).meta.laterality
        if wanted is None or side == wanted:
            paths.append(path)
            sides.append(side)
        if len(paths) == n:
            break
    if not paths:
        raise ConfigError(f"no {subset} breast image among the {len(sources)} images")
    return paths, sides


class LazyImages(Sequence):
    """Preprocessed images read on access, so only one batch is ever in memory."""

    def __init__(self, paths: list[str], size: tuple[int, int], mode: str = "acquired",
                 clear_background: bool = True) -> None:
        self.paths, self.size, self.mode, self.clear_background = paths, size, mode, clear_background

    def __len__(self) -> int:
        return len(self.paths)

    def __getitem__(self, index: int):
        from hct.data import preprocess, read_mammogram

        return preprocess(read_mammogram(self.paths[index]), self.size, self.mode, self.clear_background)


def _progress(label: str):
    def report(done: int, total: int) -> None:
        print(f"\r{label}: {done}/{total} images", end="\n" if done == total else "", file=sys.stderr, flush=True)
    return report


def write_erf_outputs(results: list[ERFResult], out: Path) -> list[Path]:
    """Maps and curves (.npz, CSV), metrics (CSV), a PNG summary and an offline HTML report."""
    out.mkdir(parents=True, exist_ok=True)
    written = []
    for r in results:
        path = out / f"erf_{r.model_name}_{r.subset}.npz"
        np.savez_compressed(path, map=r.map, sqrt_map=r.sqrt_map, curve_over_columns=r.curve_over_columns,
                            curve_over_rows=r.curve_over_rows, image_curves_over_columns=r.image_curves_over_columns,
                            image_curves_over_rows=r.image_curves_over_rows, position=np.array(r.position),
                            input_centre=np.array(r.input_centre), stride=np.array(r.stride),
                            mask=r.mask if r.mask is not None else np.zeros(0), reduction=r.reduction, n=r.n)
        written.append(path)
    path = out / "erf_curves.csv"
    curves_frame(results).to_csv(path, index=False)
    written.append(path)
    metrics = [{"model": r.model_name, "subset": r.subset, "n": r.n, "position": f"{r.position[0]},{r.position[1]}",
                **erf_metrics(r)} for r in results]
    path = out / "erf_metrics.csv"
    with path.open("w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=list(dict.fromkeys(k for m in metrics for k in m)))
        writer.writeheader()
        writer.writerows(metrics)
    written.append(path)
    path = out / "erf.png"
    erf_summary_figure(results).savefig(path, dpi=120)
    written.append(path)
    figures = [erf_heatmaps(results), erf_heatmaps(results, sqrt=True)]
    figures += [erf_curves(results, axis, sqrt) for sqrt in (False, True) for axis in ("columns", "rows")]
    written += write_figures_html(figures, out / "erf.html", "Effective receptive field")
    return written


def run_erf(args: argparse.Namespace) -> int:
    size = parse_size(args.size)
    position = "centre" if args.position in ("centre", "center") else parse_pair(args.position, "--position")
    batch = args.batch_size if args.batch_size == "auto" else int(args.batch_size)
    if args.n < 1:
        raise ConfigError(f"--n must be at least 1, got {args.n}")
    device = resolve_device(args.device)
    paths, sides = sample_images(image_sources(args.images), args.n, args.subset, args.seed)
    if len(paths) < args.n:
        print(f"only {len(paths)} {args.subset} images available (asked for {args.n})", file=sys.stderr)
    images = LazyImages(paths, size, args.mode, not args.keep_background)
    results = []
    for spec in args.models:
        model, label = model_and_label(spec, device)
        results.append(compute_erf(model, images, position=position, lateralities=sides, subset=args.subset,
                                   reduction=args.reduction, batch_size=batch, keep_image_maps=False,
                                   model_name=label, progress=_progress(label)))
    for path in write_erf_outputs(results, Path(args.out)):
        print(path)
    return 0


def run_explain(args: argparse.Namespace) -> int:
    from hct.data import preprocess, read_mammogram

    device = resolve_device(args.device)
    model, label = model_and_label(args.model, device)
    pre = preprocess(read_mammogram(args.image), parse_size(args.size), clear_background=not args.keep_background)
    image = pre.tensor[0].numpy()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    stem = f"{Path(args.image).stem}_{label}_{args.method}"
    if args.method == "attention":
        query = parse_pair(args.query, "--query") if args.query else (image.shape[0] // 2, image.shape[1] // 2)
        result = attention_map(model, pre, query, layer=args.layer)
        heatmap, marker = result.upsampled, result.query_input
        title = f"{label}: attention of {result.layer} from {result.query}"
        arrays = dict(heatmap=heatmap, heads=result.heads, mean=result.mean, query=np.array(result.query))
    else:
        result = attribute(model, pre, args.method)
        heatmap, marker = result.heatmap, None
        title = f"{label}: {args.method}, P(malignant) = {result.probability:.3f}"
        print(f"P(malignant) = {result.probability:.4f}")
        arrays = dict(heatmap=heatmap, probability=np.array(result.probability))
    if result.original is not None:
        arrays["original"] = result.original
    np.savez_compressed(out / f"{stem}.npz", **arrays)
    written = [out / f"{stem}.npz"]
    written += write_figures_html([heatmap_overlay(image, heatmap, title=title, marker=marker)],
                                 out / f"{stem}.html", title)
    written.append(_overlay_png(image, heatmap, title, out / f"{stem}.png"))
    for path in written:
        print(path)
    return 0


def _overlay_png(image: np.ndarray, heatmap: np.ndarray, title: str, path: Path) -> Path:
    from matplotlib.figure import Figure

    fig = Figure(figsize=(6, 6 * image.shape[0] / image.shape[1]), layout="constrained")
    ax = fig.add_subplot()
    ax.imshow(image, cmap="gray")
    ax.imshow(heatmap, cmap="jet", alpha=0.45)
    ax.set_title(title, fontsize=8)
    ax.axis("off")
    fig.savefig(path, dpi=120)
    return path


def add_commands(subparsers) -> None:
    """Register ``erf`` and ``explain``."""
    p = subparsers.add_parser("erf", help="effective receptive field of models over N images (paper Sec. 4)")
    p.add_argument("--models", nargs="+", required=True, help="registry names (random init) or checkpoint paths")
    p.add_argument("--images", required=True, help="a folder of images, a manifest .csv, or 'samples'")
    p.add_argument("--n", type=int, default=100, help="number of images (paper: 100)")
    p.add_argument("--subset", choices=SUBSETS, default="all", help="all, left or right breasts")
    p.add_argument("--size", default="1664x1280", help="model input HxW (full resolution: 3328x2560)")
    p.add_argument("--position", default="centre", help="output feature-map position: centre or ROW,COL")
    p.add_argument("--mode", choices=MODES, default="acquired",
                   help="preprocessing: acquired (no flip, no crop: the paper's ERF study) or canonical")
    p.add_argument("--keep-background", action="store_true",
                   help="keep what lies outside the breast (labels, markers) instead of clearing it")
    p.add_argument("--reduction", choices=("mean", "mean_abs"), default="mean",
                   help="mean of signed gradients (paper) or of their absolute values")
    p.add_argument("--batch-size", default="auto", help="'auto' or an int")
    p.add_argument("--device", default="auto", help="auto, cpu or cuda[:i]")
    p.add_argument("--seed", type=int, default=0, help="seed of the random image sample")
    p.add_argument("--out", required=True, help="output folder")
    p.set_defaults(func=run_erf)

    p = subparsers.add_parser("explain", help="heat map of one image: attribution or HCT attention")
    p.add_argument("--model", required=True, help="registry name (random init) or checkpoint path")
    p.add_argument("--image", required=True, help="a DICOM/PNG/TIFF mammogram")
    p.add_argument("--method", choices=(*METHODS, "attention"), default="gradcam")
    p.add_argument("--size", default="1664x1280", help="model input HxW")
    p.add_argument("--query", default=None, help="attention: query ROW,COL in input pixels (default: centre)")
    p.add_argument("--layer", default=None, help="attention: layer name (default: the first attention layer)")
    p.add_argument("--keep-background", action="store_true",
                   help="keep what lies outside the breast (labels, markers) instead of clearing it")
    p.add_argument("--device", default="auto", help="auto, cpu or cuda[:i]")
    p.add_argument("--out", required=True, help="output folder")
    p.set_defaults(func=run_explain)
