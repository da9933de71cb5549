"""``python -m hct erf`` (ERF of several models over N images), ``python -m hct explain`` (one image, its
overlay as acquired) and ``python -m hct localize`` (where each method points, against finding boxes)."""

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
from hct.explain.export import secondary_capture, source_uids
from hct.explain.figures import erf_curves, erf_heatmaps, erf_summary_figure, localization_figure, picture_figure
from hct.explain.localization import LOCALIZATION_METHODS, TOLERANCE, localize, summarise
from hct.explain.metrics import erf_metrics
from hct.explain.overlays import DISPLAY_LONG_SIDE, overlay_picture, png_bytes, point_in_original
from hct.explain.readable import Readability, model_pixel_spacing, readable
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
    image = read_mammogram(args.image)
    if image.meta.warning:
        print(f"warning: {image.meta.warning}", file=sys.stderr)
    pre = preprocess(image, parse_size(args.size), clear_background=not args.keep_background)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    stem = f"{Path(args.image).stem}_{label}_{args.method}"
    marker = None
    if args.method == "attention":
        query = parse_pair(args.query, "--query") if args.query else (pre.size[0] // 2, pre.size[1] // 2)
        result = attention_map(model, pre.tensor, query, layer=args.layer)
        heatmap, marker = result.upsampled, point_in_original(pre, result.query_input, DISPLAY_LONG_SIDE)
        title = f"{label}: attention of {result.layer} from {result.query}"
        arrays = dict(heatmap=heatmap, heads=result.heads, mean=result.mean, query=np.array(result.query))
    else:
        result = attribute(model, pre.tensor, args.method, **({"layer": args.layer} if args.method == "gradcam" and args.layer else {}))
        heatmap = result.heatmap
        title = f"{label}: {args.method}{' of ' + result.layer if result.layer else ''}, P(malignant) = {result.probability:.3f}"
        print(f"P(malignant) = {result.probability:.4f}")
        arrays = dict(heatmap=heatmap, probability=np.array(result.probability))
    options = Readability(args.percentile, args.sigma, args.top_mass or None)
    shown = readable(heatmap, options, model_pixel_spacing(image.meta.pixel_spacing, pre.scale))
    np.savez_compressed(out / f"{stem}.npz", original=pre.to_original(heatmap), **arrays)
    picture = overlay_picture(image.pixels, pre, shown, args.opacity, long_side=None)
    written = [out / f"{stem}.npz", out / f"{stem}.png"]
    written[-1].write_bytes(png_bytes(picture))
    figure = picture_figure(overlay_picture(image.pixels, pre, shown, args.opacity), title=title, marker=marker)
    written += write_figures_html([figure], out / f"{stem}.html", title)
    if args.secondary_capture or args.reference_study:
        reference = source_uids(args.image) if args.reference_study else None
        written.append(out / f"{stem}.dcm")
        written[-1].write_bytes(secondary_capture(picture, f"{label} {args.method} overlay", reference,
                                                  image.meta.pixel_spacing, image.meta.laterality))
    for path in written:
        print(path)
    return 0


def run_localize(args: argparse.Namespace) -> int:
    device = resolve_device(args.device)
    records = [r for r in load_records(args.data) if args.split == "all" or r.split == args.split]
    models = dict(model_and_label(spec, device)[::-1] for spec in args.model)
    rows = localize(models, records, args.methods, parse_size(args.size), args.tolerance,
                    progress=_progress("localize"))
    summary = summarise(rows, n_boot=args.n_boot)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    written = [out / "localization.csv", out / "localization_summary.csv", out / "localization.png"]
    rows.to_csv(written[0], index=False)
    summary.to_csv(written[1], index=False)
    localization_figure(summary).savefig(written[2], dpi=120)
    print(summary.to_string(index=False, float_format=lambda v: f"{v:.3f}"))
    for path in written:
        print(path)
    return 0


def add_commands(subparsers) -> None:
    """Register ``erf``, ``explain`` and ``localize``."""
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
    p.add_argument("--layer", default=None, help="attention: layer name (default: the first attention layer); "
                   "gradcam: stages.0 .. stages.4 (default: the last; earlier is finer)")
    p.add_argument("--keep-background", action="store_true",
                   help="keep what lies outside the breast (labels, markers) instead of clearing it")
    p.add_argument("--percentile", type=float, default=99.5, help="colour scale clipped at this percentile")
    p.add_argument("--sigma", type=float, default=0.0,
                   help="Gaussian smoothing: mm where the pixel spacing is known, else pixels (0: none)")
    p.add_argument("--top-mass", type=float, default=0.5, help="outline the region holding this share of the mass (0: none)")
    p.add_argument("--opacity", type=float, default=0.5, help="heat-map opacity")
    p.add_argument("--secondary-capture", action="store_true", help="also write the overlay as a DICOM Secondary Capture")
    p.add_argument("--reference-study", action="store_true",
                   help="file the Secondary Capture in the source image's study (its UIDs; never patient identity)")
    p.add_argument("--device", default="auto", help="auto, cpu or cuda[:i]")
    p.add_argument("--out", required=True, help="output folder")
    p.set_defaults(func=run_explain)

    p = subparsers.add_parser("localize", help="score each method's map against the findings' boxes (pointing game)")
    p.add_argument("--model", nargs="+", required=True, help="checkpoint paths or registry names (random init)")
    p.add_argument("--data", required=True, help="a phantom folder or manifest .csv with finding boxes")
    p.add_argument("--split", default="test", choices=("train", "val", "test", "all"))
    p.add_argument("--methods", nargs="+", default=["gradcam", "saliency", "attention"], choices=LOCALIZATION_METHODS)
    p.add_argument("--size", default="1664x1280", help="model input HxW")
    p.add_argument("--tolerance", type=float, default=TOLERANCE, help="pointing-game tolerance, pixels at model resolution")
    p.add_argument("--n-boot", type=int, default=10_000, help="bootstrap resamples of the images")
    p.add_argument("--device", default="auto", help="auto, cpu or cuda[:i]")
    p.add_argument("--out", required=True, help="output folder")
    p.set_defaults(func=run_localize)
