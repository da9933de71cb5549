"""``python -m hct erf`` (ERF of several models over N images), ``python -m hct table1`` (the paper's
Table 1 / A2), ``python -m hct explain`` (one image, its overlay as acquired) and ``python -m hct
localize`` (where each method points, against the findings' ROI masks, else their boxes). ``erf`` and
``table1`` also run under ``torchrun``: images are shared out over the processes and rank 0 writes the
outputs."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from hct.data.options import MODES
from hct.errors import ConfigError
from hct.explain.options import (
    DEFAULT_REDUCTION,
    LOCALIZATION_METHODS,
    METHODS,
    NORMALISATIONS,
    REDUCTIONS,
    SCALES,
    STAGES,
    SUBSETS,
    TOLERANCE,
    default_cache_dir,
)
from hct.io import atomic_write

if TYPE_CHECKING:  # each command imports its library when it runs: the parser starts at once
    import torch

    from hct.data import ImageRecord
    from hct.explain.erf.engine import ERFEngine
    from hct.explain.erf.maps import MapView
    from hct.runtime.distributed import DistContext


def parse_pair(text: str, what: str) -> tuple[int, int]:
    try:
        row, col = (int(v) for v in text.split(","))
    except ValueError:
        raise ConfigError(f"{what} must be ROW,COL such as 12,10, got {text!r}") from None
    return row, col


def model_and_label(spec: str, device: torch.device, quiet: bool = False) -> tuple[torch.nn.Module, str]:
    """A registry name (random initialisation, said on stderr) or a checkpoint path -> (model, label)."""
    from hct.models.checkpoints import load_model
    from hct.models.ref import ref_of

    model, card = load_model(spec, device=device)
    if card is None and not quiet:
        print(
            f"{spec}: random initialisation (no checkpoint): the maps show the architecture, not a trained model",
            file=sys.stderr,
        )
    return model, ref_of(model).label


def dataset_records(images: str, split: str | None) -> list[ImageRecord]:
    """The records of ``images`` (see ``hct.data.load_records``), only those of ``split`` when given."""
    from hct.data import load_records

    records = load_records(images)
    if split:
        records = [r for r in records if r.split == split]
        if not records:
            raise ConfigError(f"no image of {images} is in split {split!r}; check --split (train, val, test)")
    return records


def laterality(record: ImageRecord) -> str:
    """The record's laterality, read from the file when the record lacks it."""
    from hct.data import read_mammogram

    return record.laterality or read_mammogram(record.path).meta.laterality


def _progress(label: str):
    def report(done: int, total: int) -> None:
        print(f"\r{label}: {done}/{total} images", end="\n" if done == total else "", file=sys.stderr, flush=True)

    return report


def _engine(args: argparse.Namespace, context: DistContext, label: str) -> ERFEngine:
    from hct.data.pacs.sources import is_pacs
    from hct.explain.erf.cache import GradientCache
    from hct.explain.erf.engine import ERFEngine

    batch = args.batch_size if args.batch_size == "auto" else int(args.batch_size)
    cache = None if args.no_cache or is_pacs(args.images) else GradientCache(args.cache_dir)  # PACS: nothing on disk
    return ERFEngine(
        batch_size=batch,
        windowed=not args.no_window,
        cache=cache,
        context=context,
        progress=_progress(label) if context.is_main else None,
    )


def _position(text: str) -> str | tuple[int, int]:
    return "centre" if text in ("centre", "center") else parse_pair(text, "--position")


def _models(specs: list[str], context: DistContext) -> dict[str, torch.nn.Module]:
    models = {}
    for spec in specs:
        model, label = model_and_label(spec, context.device, quiet=not context.is_main)
        models[label] = model
    return models


def _view(args: argparse.Namespace) -> MapView:
    from hct.explain.erf.maps import MapView

    return MapView(normalisation=args.normalisation, scale=args.scale, clip=args.clip)


def run_erf(args: argparse.Namespace) -> int:
    from hct.data import PreprocessedFiles, parse_size
    from hct.data.sets.sampling import sample_images
    from hct.explain.display.outputs import write_erf_outputs
    from hct.explain.erf.compute import compute_erfs
    from hct.runtime.devices import resolve_device
    from hct.runtime.distributed import process_group

    size, position = parse_size(args.size), _position(args.position)
    with process_group(resolve_device(args.device)) as context:
        records = dataset_records(args.images, args.split)
        chosen = sample_images(
            len(records), args.n, subset=args.subset, seed=args.seed, side_of=lambda i: laterality(records[i])
        )
        images = PreprocessedFiles([records[i].path for i in chosen], size, args.mode, not args.keep_background)
        models = _models(args.models, context)
        results = compute_erfs(
            models,
            images,
            {args.subset: range(len(chosen))},
            position=position,
            reduction=args.reduction,
            stage=args.stage,
            engine=_engine(args, context, " + ".join(models)),
        )
        if context.is_main:
            inputs = f"{args.mode}, background {'kept' if args.keep_background else 'cleared'}"
            for path in write_erf_outputs(results, Path(args.out), _view(args), inputs):
                print(path)
    return 0


def run_table1(args: argparse.Namespace) -> int:
    from hct.data import PreprocessedFiles, parse_size
    from hct.explain.display.outputs import write_table1
    from hct.explain.erf.table1 import compute_table1, sample_table1
    from hct.runtime.devices import resolve_device
    from hct.runtime.distributed import process_group

    size, position = parse_size(args.size), _position(args.position)
    with process_group(resolve_device(args.device)) as context:
        records = dataset_records(args.images, args.split)
        sample = sample_table1(len(records), lambda i: laterality(records[i]), args.n, args.seed)
        chosen = [records[i] for i in sample.order]
        images = PreprocessedFiles([r.path for r in chosen], size, args.mode, not args.keep_background)
        models = _models(args.models, context)
        settings = {
            "models": dict(zip(models, args.models)),
            "images": args.images,
            "split": args.split,
            "size": f"{size[0]}x{size[1]}",
            "mode": args.mode,
            "background": "kept" if args.keep_background else "cleared",
        }
        table = compute_table1(
            models,
            images,
            sample,
            image_ids=[r.image_id for r in chosen],
            position=position,
            reduction=args.reduction,
            stage=args.stage,
            settings=settings,
            engine=_engine(args, context, " + ".join(models)),
        )
        if context.is_main:
            for path in write_table1(table, Path(args.out), _view(args)):
                print(path)
    return 0


def _explained_image(image: str) -> tuple[str, str]:
    """What ``--image`` reads (a path, or one view of a PACS study held in memory) and its output stem."""
    from hct.data import load_records
    from hct.data.pacs.sources import is_pacs

    if not is_pacs(image):
        return image, Path(image).stem
    records = load_records(image)
    if len(records) != 1:
        views = ", ".join(f"{r.laterality}-{r.view}" for r in records)
        raise ConfigError(f"--image {image} holds {len(records)} images ({views}); explain one: {image}/R-CC, say")
    return records[0].path, records[0].image_id.replace("/", "_")


def run_explain(args: argparse.Namespace) -> int:
    import numpy as np

    from hct.data import parse_size, read_mammogram
    from hct.data.image.memory import held, is_held
    from hct.explain.display.export import source_uids
    from hct.explain.display.figures import picture_figure
    from hct.explain.display.readable import Readability
    from hct.explain.explanation import explain
    from hct.reports import write_figures_html
    from hct.runtime.devices import resolve_device

    device = resolve_device(args.device)
    model, label = model_and_label(args.model, device)
    source, name = _explained_image(args.image)
    image = read_mammogram(source)
    if image.meta.warning:
        print(f"warning: {image.meta.warning}", file=sys.stderr)
    explained = explain(
        model,
        image,
        args.method,
        parse_size(args.size),
        Readability(args.percentile, args.sigma, args.top_mass or None),
        query=parse_pair(args.query, "--query") if args.query else None,
        layer=args.layer,
        clear_background=not args.keep_background,
    )
    title = f"{label}: {explained.what}"
    if explained.probability is not None:
        title += f", P(malignant) = {explained.probability:.3f}"
        print(f"P(malignant) = {explained.probability:.4f}")
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    stem = f"{name}_{label}_{args.method}"
    written = [out / f"{stem}.npz", out / f"{stem}.png"]
    atomic_write(written[0], lambda tmp: np.savez_compressed(tmp, **explained.arrays_to_save()))
    atomic_write(written[1], explained.png(args.opacity))
    figure = picture_figure(explained.overlay(args.opacity), title=title, marker=explained.marker())
    written += write_figures_html([figure], out / f"{stem}.html", title)
    if args.secondary_capture or args.reference_study:
        reference = source_uids(held(source) if is_held(source) else source) if args.reference_study else None
        written.append(out / f"{stem}.dcm")
        atomic_write(
            written[-1], explained.secondary_capture(f"{label} {args.method} overlay", args.opacity, reference)
        )
    for path in written:
        print(path)
    return 0


def run_localize(args: argparse.Namespace) -> int:
    from hct.data import load_records, parse_size
    from hct.explain.display.figures import localization_figure
    from hct.explain.localization import localize, summarise
    from hct.models.ref import ref_of
    from hct.runtime.devices import resolve_device

    device = resolve_device(args.device)
    records = [r for r in load_records(args.data) if args.split == "all" or r.split == args.split]
    models = dict(model_and_label(spec, device)[::-1] for spec in args.model)
    rows = localize(
        models, records, args.methods, parse_size(args.size), args.tolerance, progress=_progress("localize")
    )
    summary = summarise(rows, n_boot=args.n_boot)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    written = [out / "localization.csv", out / "localization_summary.csv", out / "localization.png"]
    atomic_write(written[0], lambda tmp: rows.to_csv(tmp, index=False))
    atomic_write(written[1], lambda tmp: summary.to_csv(tmp, index=False))
    figure = localization_figure(summary, [ref_of(model, label) for label, model in models.items()])
    atomic_write(written[2], lambda tmp: figure.savefig(tmp, dpi=120))
    print(summary.to_string(index=False, float_format=lambda v: f"{v:.3f}"))
    for path in written:
        print(path)
    return 0


def _erf_arguments(p: argparse.ArgumentParser) -> None:
    """The arguments ``erf`` and ``table1`` share."""
    p.add_argument("--models", nargs="+", required=True, help="registry names (random init) or checkpoint paths")
    p.add_argument(
        "--images",
        required=True,
        help="a folder of images, a manifest .csv, a phantom folder, 'samples' "
        "or pacs:STUDY_UID (retrieved into memory; its gradients are not cached on disk)",
    )
    p.add_argument("--split", default=None, help="only the images of this split (train, val, test)")
    p.add_argument("--n", type=int, default=100, help="images per subset (paper: 100)")
    p.add_argument("--seed", type=int, default=0, help="seed of the random image sample")
    p.add_argument("--size", default="1664x1280", help="model input HxW (full resolution: 3328x2560)")
    p.add_argument("--position", default="centre", help="output feature-map position of the stage: centre or ROW,COL")
    p.add_argument(
        "--stage",
        type=int,
        choices=STAGES,
        default=None,
        help="whose output position is back-propagated: stage 1-5 (default 5, the output feature map)",
    )
    p.add_argument(
        "--reduction",
        choices=REDUCTIONS,
        default=DEFAULT_REDUCTION,
        help="per-image gradient: mean_abs (|grad|, default: shows the paper's curves), mean (signed, "
        "Luo et al.) or positive (relu(grad), RepLKNet)",
    )
    p.add_argument(
        "--mode",
        choices=MODES,
        default="acquired",
        help="preprocessing: acquired (no flip, no crop: the paper's ERF study) or canonical",
    )
    p.add_argument(
        "--keep-background",
        action="store_true",
        help="keep what lies outside the breast (labels, markers) instead of clearing it",
    )
    p.add_argument(
        "--normalisation",
        choices=NORMALISATIONS,
        default=None,
        help="per-model curves and maps: area (default for mean_abs/positive), peak (default for mean) or none",
    )
    p.add_argument("--scale", choices=SCALES, default="sqrt", help="display scale of the maps in the figures")
    p.add_argument("--clip", type=float, default=100.0, help="maps' colour scale saturates at this percentile")
    p.add_argument("--batch-size", default="auto", help="'auto' or an int")
    p.add_argument("--device", default="auto", help="auto, cpu or cuda[:i]")
    p.add_argument(
        "--cache-dir",
        default=str(default_cache_dir()),
        help="per-image gradients are kept here, so a second run is nearly free",
    )
    p.add_argument("--no-cache", action="store_true", help="neither read nor write the gradient cache")
    p.add_argument(
        "--no-window",
        action="store_true",
        help="back-propagate through the whole image even where the receptive field is bounded (GMIC)",
    )
    p.add_argument("--out", required=True, help="output folder")


def add_commands(subparsers) -> None:
    """Register ``erf``, ``table1``, ``explain`` and ``localize``."""
    p = subparsers.add_parser("erf", help="effective receptive field of models over N images (paper Sec. 4)")
    _erf_arguments(p)
    p.add_argument("--subset", choices=SUBSETS, default="all", help="all, left or right breasts")
    p.set_defaults(func=run_erf)

    p = subparsers.add_parser(
        "table1", help="the paper's Table 1 / A2: ERFs of models over all, right and left breasts"
    )
    _erf_arguments(p)
    p.set_defaults(func=run_table1)

    p = subparsers.add_parser("explain", help="heat map of one image: attribution or HCT attention")
    p.add_argument("--model", required=True, help="registry name (random init) or checkpoint path")
    p.add_argument(
        "--image",
        required=True,
        help="a DICOM/PNG/TIFF mammogram, or one view of a PACS study: pacs:STUDY_UID/R-CC (see `python -m hct pacs`)",
    )
    p.add_argument("--method", choices=(*METHODS, "attention"), default="gradcam")
    p.add_argument("--size", default="1664x1280", help="model input HxW")
    p.add_argument("--query", default=None, help="attention: query ROW,COL in input pixels (default: centre)")
    p.add_argument(
        "--layer",
        default=None,
        help="attention: layer name (default: the first attention layer); "
        "gradcam: stages.0 .. stages.4 (default: the last; earlier is finer)",
    )
    p.add_argument(
        "--keep-background",
        action="store_true",
        help="keep what lies outside the breast (labels, markers) instead of clearing it",
    )
    p.add_argument("--percentile", type=float, default=99.5, help="colour scale clipped at this percentile")
    p.add_argument(
        "--sigma",
        type=float,
        default=0.0,
        help="Gaussian smoothing: mm where the pixel spacing is known, else pixels (0: none)",
    )
    p.add_argument(
        "--top-mass", type=float, default=0.5, help="outline the region holding this share of the mass (0: none)"
    )
    p.add_argument("--opacity", type=float, default=0.5, help="heat-map opacity")
    p.add_argument(
        "--secondary-capture", action="store_true", help="also write the overlay as a DICOM Secondary Capture"
    )
    p.add_argument(
        "--reference-study",
        action="store_true",
        help="file the Secondary Capture in the source image's study (its UIDs; never patient identity)",
    )
    p.add_argument("--device", default="auto", help="auto, cpu or cuda[:i]")
    p.add_argument("--out", required=True, help="output folder")
    p.set_defaults(func=run_explain)

    p = subparsers.add_parser(
        "localize", help="score each method's map against the findings' ROI masks or boxes (energy, pointing game)"
    )
    p.add_argument("--model", nargs="+", required=True, help="checkpoint paths or registry names (random init)")
    p.add_argument("--data", required=True, help="a phantom folder or manifest .csv with finding boxes")
    p.add_argument("--split", default="test", choices=("train", "val", "test", "all"))
    p.add_argument("--methods", nargs="+", default=["gradcam", "saliency", "attention"], choices=LOCALIZATION_METHODS)
    p.add_argument("--size", default="1664x1280", help="model input HxW")
    p.add_argument(
        "--tolerance", type=float, default=TOLERANCE, help="pointing-game tolerance, pixels at model resolution"
    )
    p.add_argument("--n-boot", type=int, default=10_000, help="bootstrap resamples of the images")
    p.add_argument("--device", default="auto", help="auto, cpu or cuda[:i]")
    p.add_argument("--out", required=True, help="output folder")
    p.set_defaults(func=run_localize)
