"""Hostile inputs per kind, through the library's entry points (``tests/fuzz_inputs.py``): how many read,
how many were refused cleanly (the kind's own error class, one line), how many crashed.

Kinds: DICOM header values and seeded cuts and byte flips, TIFF/PNG of odd dtypes and values, model cards with
each field's type changed, training configs with each field out of range, and pydicom's own test files
(those installed with pydicom; read only, no preprocessing verdict beyond ``use_image``).

Run from the repository root: ``PYTHONPATH=$PWD python bench/fuzz.py [--seeds 5] [--crashes]``; prints a
Markdown table (and, with ``--crashes``, each crash).
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
import fuzz_inputs as fuzz  # noqa: E402

from hct.models import create_model  # noqa: E402
from hct.models.checkpoints import save_checkpoint  # noqa: E402


def _images(seeds: int) -> list[fuzz.Verdict]:
    verdicts = []
    for seed in range(seeds):
        verdicts += [fuzz.judge("dicom", c, lambda d=d: fuzz.use_image(d)) for c, d in fuzz.dicom_cases(seed, 200)]
        verdicts += [fuzz.judge("picture", c, lambda d=d: fuzz.use_image(d)) for c, d in fuzz.picture_cases(seed)]
    return verdicts


def _pydicom_files() -> list[fuzz.Verdict]:
    from pydicom.data import get_testdata_files

    files = [Path(p) for p in get_testdata_files("*") if Path(p).is_file()]
    return [fuzz.judge("dicom", f"pydicom {p.name}", lambda p=p: fuzz.use_image(p.read_bytes())) for p in files]


def _cards(folder: Path) -> list[fuzz.Verdict]:
    torch.manual_seed(0)
    card = json.loads(
        save_checkpoint(
            create_model("gmic"),
            folder / "gmic.safetensors",
            input_size=(64, 48),
            stage="image",
            metrics={"test_auc": 0.5},
        ).to_json()
    )
    verdicts = []
    for case, changed in fuzz.card_cases(card):
        (folder / "gmic.json").write_text(json.dumps(changed))
        verdicts.append(fuzz.judge("card", case, lambda: fuzz.use_card(folder / "gmic.json")))
    return verdicts


def _configs(folder: Path) -> list[fuzz.Verdict]:
    config = fuzz.valid_config(folder)
    return [fuzz.judge("config", c, lambda c2=changed: fuzz.use_config(c2)) for c, changed in fuzz.config_cases(config)]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=5, help="seeds of random DICOM cuts/flips (200 each) and pictures")
    parser.add_argument("--crashes", action="store_true", help="list each crash")
    args = parser.parse_args()
    started = time.perf_counter()
    with tempfile.TemporaryDirectory() as tmp:
        verdicts = _images(args.seeds) + _pydicom_files() + _cards(Path(tmp)) + _configs(Path(tmp))
    groups = {
        "DICOM header values, cuts and byte flips": lambda v: v.kind == "dicom" and not v.case.startswith("pydicom"),
        "pydicom's own test files": lambda v: v.case.startswith("pydicom "),
        "TIFF / PNG of odd dtypes and values": lambda v: v.kind == "picture",
        "model cards, each field's type changed": lambda v: v.kind == "card",
        "training configs, each field out of range": lambda v: v.kind == "config",
    }
    print("| input kind | tried | reads | clean refusals | crashes (tracebacks) | slowest (s) |")
    print("|---|---:|---:|---:|---:|---:|")
    for label, member in groups.items():
        mine = [v for v in verdicts if member(v)]
        counts = Counter(v.outcome for v in mine)
        print(
            f"| {label} | {len(mine):,} | {counts['read']:,} | {counts['refused']:,} | {counts['crash']:,} | "
            f"{max(v.seconds for v in mine):.2f} |"
        )
    print(f"\n{len(verdicts):,} inputs in {time.perf_counter() - started:.0f} s")
    if args.crashes:
        for v in verdicts:
            if v.outcome == "crash":
                print(f"- {v.kind} | {v.case} | {v.detail[:200]}")


if __name__ == "__main__":
    main()
