"""A synthetic mammography benchmark with known findings, written as real DICOM files + a manifest.

Each patient has one exam of four views (L/R x CC/MLO). Every breast is given a role, in exact
proportions within each split: malignant (one of the four finding types, equally often), benign (a
smooth mass or scattered round calcifications) or normal; a breast's finding shows in both of its
views. Malignant and benign findings share size and contrast: only shape tells them apart, so a
model must look at the finding and the tissue around it. Two malignant types need context wider
than a CNN's effective receptive field (paper, Fig. A1 and Tab. A1): architectural distortion
(thin lines converging on an empty centre over several hundred pixels) and focal asymmetry (a
patch of dense-looking tissue in an otherwise fatty breast); see :mod:`hct.data.phantom.render`.

Finding sizes (the square root of the box area, in pixels at 1664x1280, scaling with the image)
spread over the paper's thresholds 100..400: mass 30-300, calcifications 25-200, architectural
distortion 150-450, focal asymmetry 120-420. Images are 12-bit, stored lossless RLE by default.
The test split is sized for the paper's tables (:data:`BENCHMARK_SPLITS`).
"""

from __future__ import annotations

import concurrent.futures
import multiprocessing
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from hct.data.image.dicom_write import mammogram_dataset, write_dataset
from hct.data.options import COMPRESSIONS
from hct.data.phantom.render import MAX_VALUE, BreastPlan, Finding, render
from hct.data.records import FINDING_TYPES, SPLITS, ImageRecord
from hct.data.sets.manifest import MANIFEST_NAME, make_record, write_manifest
from hct.errors import ConfigError, cancellable

VIEW_ORDER = (("L", "CC"), ("L", "MLO"), ("R", "CC"), ("R", "MLO"))
SIZE_RANGES = {
    "mass": (30, 300),
    "calcifications": (25, 200),
    "architectural_distortion": (150, 450),
    "focal_asymmetry": (120, 420),
}
BENIGN_KINDS = ("mass", "calcifications")


@dataclass(frozen=True)
class _ImagePlan:
    image_id: str
    patient_id: str
    split: str
    label: int
    breast: BreastPlan


def split_counts(n: int, fractions: tuple[float, float, float] = (0.8, 0.1, 0.1)) -> dict[str, int]:
    """Images per split for ``n`` images in whole four-view patients (the rest in train)."""
    patients = -(-n // 4)
    val, test = (int(round(patients * f)) for f in fractions[1:])
    counts = {"train": 4 * (patients - val - test), "val": 4 * val, "test": 4 * test}
    counts["train"] -= 4 * patients - n
    return counts


def _roles(
    breasts: int, rng: np.random.Generator, malignant_fraction: float, benign_fraction: float
) -> list[tuple[int, str | None]]:
    """(label, finding kind or None) per breast, in exact proportions, shuffled."""
    malignant = int(round(breasts * malignant_fraction))
    benign = min(int(round(breasts * benign_fraction)), breasts - malignant)
    roles = [(1, FINDING_TYPES[i % len(FINDING_TYPES)]) for i in range(malignant)]
    roles += [(0, BENIGN_KINDS[i % len(BENIGN_KINDS)]) for i in range(benign)]
    roles += [(0, None)] * (breasts - malignant - benign)
    return [roles[i] for i in rng.permutation(len(roles))]


def _finding(rng: np.random.Generator, kind: str, malignant: bool) -> Finding:
    low, high = SIZE_RANGES[kind] if malignant else (40, 260)
    return Finding(
        kind,
        malignant,
        depth=float(rng.uniform(0.3, 0.7)),
        height=float(rng.uniform(-0.5, 0.5)),
        size=float(np.exp(rng.uniform(np.log(low), np.log(high)))),
        seed=int(rng.integers(2**31)),
    )


def _plan(counts: Mapping[str, int], seed: int, malignant_fraction: float, benign_fraction: float) -> list[_ImagePlan]:
    plans: list[_ImagePlan] = []
    for split_index, split in enumerate(SPLITS):
        n = counts.get(split, 0)
        rng = np.random.default_rng([seed, 1 + split_index])
        patients = -(-n // 4)
        roles = _roles(2 * patients, rng, malignant_fraction, benign_fraction)
        for patient in range(patients):
            patient_id = f"PH{seed:04d}-{split[:2].upper()}{patient:05d}"
            breasts = {}
            for side_index, laterality in enumerate(("L", "R")):
                label, kind = roles[2 * patient + side_index]
                density = float(
                    rng.uniform(0.15, 0.45) if kind == "focal_asymmetry" and label else rng.uniform(0.15, 1.0)
                )
                findings = (_finding(rng, kind, bool(label)),) if kind else ()
                breasts[laterality] = (label, density, int(rng.integers(2**31)), findings)
            for view_index, (laterality, view) in enumerate(VIEW_ORDER):
                if 4 * patient + view_index >= n:
                    break
                label, density, breast_seed, findings = breasts[laterality]
                breast = BreastPlan(laterality, view, density, breast_seed, view_index, findings)
                plans.append(_ImagePlan(f"{patient_id}-{laterality}{view}", patient_id, split, label, breast))
    return plans


def _write_dicom(
    path: Path, pixels: np.ndarray, plan: _ImagePlan, seed: int, size: tuple[int, int], compression: str
) -> None:
    from pydicom.uid import RLELossless, generate_uid

    spacing = f"{0.065 * 3328 / size[0]:.4f}"
    ds = mammogram_dataset(
        pixels,
        bits_stored=int(MAX_VALUE).bit_length(),
        sop_instance=generate_uid(entropy_srcs=[str(seed), plan.image_id]),
        StudyInstanceUID=generate_uid(entropy_srcs=[str(seed), plan.patient_id, "study"]),
        SeriesInstanceUID=generate_uid(entropy_srcs=[str(seed), plan.image_id, "series"]),
        Manufacturer="HCT phantom",
        PatientID=plan.patient_id,  # an opaque key; no name, no birth date
        ImageLaterality=plan.breast.laterality,
        ViewPosition=plan.breast.view,
        PresentationIntentType="FOR PRESENTATION",
        PixelSpacing=[spacing, spacing],
    )
    if compression == "rle":
        ds.compress(RLELossless, pixels, encoding_plugin="pylibjpeg", generate_instance_uid=False)
    write_dataset(ds, path)


def _make_image(args: tuple[_ImagePlan, int, tuple[int, int], str, str]) -> list[tuple[str, tuple[int, int, int, int]]]:
    plan, seed, size, out_dir, compression = args
    pixels, boxes = render(plan.breast, size)
    _write_dicom(Path(out_dir) / "images" / f"{plan.image_id}.dcm", pixels, plan, seed, size, compression)
    return boxes


def _render_all(tasks: list, workers: int, progress: Callable[[int, int], None] | None) -> list:
    if workers <= 1:
        results = []
        for task in tasks:
            results.append(_make_image(task))
            if progress:
                progress(len(results), len(tasks))
        return results
    context = multiprocessing.get_context("fork" if "fork" in multiprocessing.get_all_start_methods() else None)
    with concurrent.futures.ProcessPoolExecutor(workers, mp_context=context) as pool:
        results = []
        for result in pool.map(_make_image, tasks, chunksize=max(1, min(16, len(tasks) // (8 * workers)))):
            results.append(result)
            if progress and (len(results) % 25 == 0 or len(results) == len(tasks)):
                progress(len(results), len(tasks))
        return results


def generate_phantom(
    n: int | Mapping[str, int],
    out_dir: str | Path,
    size: tuple[int, int] = (1664, 1280),
    seed: int = 0,
    malignant_fraction: float = 0.26,
    benign_fraction: float = 0.15,
    workers: int = 1,
    compression: str = "rle",
    progress: Callable[[int, int], None] | None = None,
    cancel: Callable[[], bool] | None = None,
) -> list[ImageRecord]:
    """Write phantom DICOMs under ``out_dir/images`` and ``out_dir/manifest.csv``; return the records.

    ``n``: the images per split (e.g. :data:`BENCHMARK_SPLITS`), or a total split 80/10/10 by
    patient. ``malignant_fraction`` and ``benign_fraction`` are shares of breasts, exact in each
    split. Deterministic by ``seed`` (any ``workers``). A malignant image's record holds its
    malignant finding (type and box); a non-malignant image's record its benign finding, if any.
    ``progress(done, total)`` is called as images are written; ``cancel()`` returning True stops there.
    """
    counts = split_counts(n) if isinstance(n, int) else {k: int(v) for k, v in n.items()}
    if set(counts) - set(SPLITS) or sum(counts.values()) < 1 or min(counts.values()) < 0:
        raise ConfigError(f"Phantom split sizes {counts} must be non-negative counts of {SPLITS}, at least one image.")
    if not (0 <= malignant_fraction and 0 <= benign_fraction and malignant_fraction + benign_fraction <= 1):
        raise ConfigError(
            f"malignant_fraction {malignant_fraction} and benign_fraction {benign_fraction} must be "
            "shares of breasts in [0, 1] that sum to at most 1."
        )
    if min(size) < 64:
        raise ConfigError(f"Phantom size {size} is too small; use at least 64 pixels a side.")
    if compression not in COMPRESSIONS:
        raise ConfigError(f"compression {compression!r}: use one of {COMPRESSIONS}.")
    out_dir = Path(out_dir)
    (out_dir / "images").mkdir(parents=True, exist_ok=True)
    plans = _plan(counts, seed, malignant_fraction, benign_fraction)
    tasks = [(plan, seed, tuple(size), str(out_dir), compression) for plan in plans]
    all_boxes = _render_all(tasks, workers, cancellable(progress, cancel, "the phantom"))
    records = []
    for plan, boxes in zip(plans, all_boxes):
        records.append(
            make_record(
                image_id=plan.image_id,
                path=str((out_dir / "images" / f"{plan.image_id}.dcm").resolve()),
                patient_id=plan.patient_id,
                exam_id=f"{plan.patient_id}-E1",
                laterality=plan.breast.laterality,
                view=plan.breast.view,
                label=plan.label,
                split=plan.split,
                finding_types=tuple(dict.fromkeys(kind.removeprefix("benign-") for kind, _ in boxes)),
                finding_boxes=[box for _, box in boxes],
            )
        )
    write_manifest(records, out_dir / MANIFEST_NAME)
    return records
