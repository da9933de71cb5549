"""Which ERF reduction shows the paper's Table 1 curves: signed mean, mean |grad| or mean relu(grad).

Computes each model's per-image gradients once (the reductions share them through the gradient
cache) on the given images, then, per reduction, the curves across rows (over columns) and across
columns (over rows):
- sign coherence |sum(curve)| / sum(|curve|): 1 when the curve has one sign, near 0 when it
  oscillates around zero (the "white field" of the signed mean);
- centre share: the share of sum(|curve|) within 128 px of the output position's centre (a bump);
- peak over median of |curve|;
- GMIC / HCT peak: the ratio of the two models' peaks once each curve has unit area (how far
  GMIC's bump stands above HCT's spread on a shared axis).
Prints a markdown table.

    python bench/erf_reductions.py --images samples --size 1664x1280 \
        --models checkpoints/gmic.safetensors checkpoints/def_gmic.safetensors checkpoints/hct_performer_relu.safetensors
"""

from __future__ import annotations

import argparse
import datetime
import tempfile

import numpy as np

from hct.data import PreprocessedFiles, load_records, parse_size
from hct.explain import REDUCTIONS, ERFEngine, GradientCache, compute_erfs
from hct.explain.cli import model_and_label


def curve_numbers(curve: np.ndarray, centre: float) -> tuple[float, float, float]:
    magnitude = np.abs(curve.astype(np.float64))
    x = np.arange(curve.size)
    coherence = abs(curve.sum()) / magnitude.sum()
    centre_share = magnitude[np.abs(x - centre) <= 128].sum() / magnitude.sum()
    peak_over_median = magnitude.max() / np.median(magnitude[magnitude > 0])
    return coherence, centre_share, peak_over_median


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--images", default="samples")
    parser.add_argument("--size", default="1664x1280")
    parser.add_argument("--models", nargs="+", required=True)
    args = parser.parse_args()
    records = load_records(args.images)
    images = PreprocessedFiles([r.path for r in records], parse_size(args.size), "acquired")
    models = dict(reversed(model_and_label(spec, "cpu")) for spec in args.models)
    print(
        f"{len(records)} images of {args.images} at {args.size} (acquired, background cleared), "
        f"{datetime.datetime.now(datetime.timezone.utc):%Y-%m-%d %H:%M} UTC\n"
    )
    print("| reduction | model | coherence rows / cols | centre share rows / cols | peak/median rows / cols |")
    print("|---|---|---|---|---|")
    peaks = {}
    with tempfile.TemporaryDirectory() as cache:
        engine = ERFEngine(cache=GradientCache(cache))
        for reduction in REDUCTIONS:
            for result in compute_erfs(
                models, images, {"all": range(len(records))}, reduction=reduction, engine=engine
            ):
                cells = [
                    curve_numbers(curve, centre)
                    for curve, centre in (
                        (result.curve_over_rows, result.input_centre[0]),
                        (result.curve_over_columns, result.input_centre[1]),
                    )
                ]
                print(
                    f"| {reduction} | {result.model_name} | "
                    + " | ".join(f"{cells[0][k]:.2f} / {cells[1][k]:.2f}" for k in range(3))
                    + " |"
                )
                peaks[reduction, result.model_name] = [
                    np.abs(c).max() / np.abs(c).sum() for c in (result.curve_over_rows, result.curve_over_columns)
                ]
    names = list(models)
    gmic = next((n for n in names if n.startswith("gmic")), names[0])
    hct = next((n for n in names if n.startswith("hct")), names[-1])
    print(f"\n| reduction | {gmic} / {hct} unit-area peak, rows / cols |\n|---|---|")
    for reduction in REDUCTIONS:
        ratio = np.divide(peaks[reduction, gmic], peaks[reduction, hct])
        print(f"| {reduction} | {ratio[0]:.2f} / {ratio[1]:.2f} |")


if __name__ == "__main__":
    main()
