"""Where each explanation points, for the shipped checkpoints on the phantom test split: runs
``python -m hct localize`` and re-fills the "Localization" section of bench/RESULTS.md.

Run from the repository root (writes the phantom first when the folder has no manifest):

    python bench/localization.py --phantom /tmp/ph --n 200
"""

from __future__ import annotations

import argparse
import re
import time
from pathlib import Path

import pandas as pd
import torch

from hct.__main__ import main as hct_main
from hct.data.sets.manifest import MANIFEST_NAME
from hct.runtime.devices import describe_device, resolve_device

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "bench" / "RESULTS.md"
START, END = "<!-- localization:start -->", "<!-- localization:end -->"
METHODS = ["gradcam", "saliency", "integrated_gradients", "smoothgrad", "attention"]


def table(summary: pd.DataFrame) -> str:
    lines = [
        "| model | method | images | energy inside the finding [95% CI] | hit rate [95% CI] | uniform map |",
        "|---|---|---|---|---|---|",
    ]
    for r in summary.itertuples():
        energy = (
            "no positive mass" if pd.isna(r.energy) else f"{r.energy:.3f} [{r.energy_low:.3f}, {r.energy_high:.3f}]"
        )
        empty = f" ({r.n_empty} empty)" if r.n_empty else ""
        lines.append(
            f"| {r.model} | {r.method.replace('_', ' ')} | {r.n_images}{empty} | {energy} | "
            f"{r.hit_rate:.2f} [{r.hit_low:.2f}, {r.hit_high:.2f}] | {r.area_share:.3f} |"
        )
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--phantom", default="/tmp/ph")
    parser.add_argument("--n", type=int, default=200)
    parser.add_argument("--size", default="1664x1280")
    parser.add_argument("--out", default="out/localization")
    parser.add_argument("--device", default="auto")
    args = parser.parse_args()
    if not (Path(args.phantom) / MANIFEST_NAME).is_file():
        hct_main(["phantom", "--n", str(args.n), "--out", args.phantom])
    checkpoints = sorted(str(p.relative_to(ROOT)) for p in (ROOT / "checkpoints").glob("*.safetensors"))
    command = [
        "localize",
        "--model",
        *checkpoints,
        "--data",
        args.phantom,
        "--split",
        "test",
        "--methods",
        *METHODS,
        "--size",
        args.size,
        "--device",
        args.device,
        "--out",
        args.out,
    ]
    start = time.perf_counter()
    if hct_main(command) != 0:
        raise SystemExit("localize failed")
    minutes = (time.perf_counter() - start) / 60
    summary = pd.read_csv(Path(args.out) / "localization_summary.csv")
    machine = describe_device(resolve_device(args.device))
    section = (
        f"{START}\nCommand: `python bench/localization.py --phantom {args.phantom} --n {args.n}` (the phantom from "
        f"`python -m hct phantom --n {args.n} --out {args.phantom}`, then `python -m hct {' '.join(command)}`).\n"
        f"Machine: {machine}, torch {torch.__version__}; {time.strftime('%Y-%m-%d')}; {minutes:.0f} minutes.\n\n"
        f"{table(summary)}\n{END}"
    )
    text = RESULTS.read_text()
    if START in text:
        text = re.sub(re.escape(START) + ".*?" + re.escape(END), lambda _: section, text, flags=re.S)
    else:
        text += f"\n## Localization\n\n{section}\n"
    RESULTS.write_text(text)
    print(section)


if __name__ == "__main__":
    main()
