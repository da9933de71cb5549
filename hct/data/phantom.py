"""A synthetic mammography data set with known findings, written as real DICOM files + a manifest.

Each patient has one exam of up to four views (L/R x CC/MLO). A breast is malignant with
probability ``malignant_fraction``; its finding (mass, calcifications, architectural distortion or
focal asymmetry) appears in both of its views. Non-malignant breasts hold a benign-looking mass or
calcifications half of the time. Malignant and benign findings share their size and contrast
distributions: only shape tells them apart (spiculated vs smooth mass, clustered pleomorphic vs
scattered round calcifications), so a model must look at the finding and at the tissue around it.
Images are drawn with the chest wall on the image's left for left breasts and on the right for
right breasts (the display convention of :mod:`hct.data.reading`).
"""

from __future__ import annotations

import concurrent.futures
import multiprocessing
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from hct.data.manifest import make_record, write_manifest
from hct.data.records import FINDING_TYPES, ImageRecord
from hct.data.splits import assign_splits
from hct.errors import ConfigError

REFERENCE_ROWS = 1664  # finding sizes are 50..500 pixels at this height and scale with it
MANIFEST_NAME = "manifest.csv"
VIEW_ORDER = (("L", "CC"), ("L", "MLO"), ("R", "CC"), ("R", "MLO"))


@dataclass(frozen=True)
class _Finding:
    kind: str
    malignant: bool
    depth: float  # 0 at the chest wall, 1 at the nipple
    height: float  # -1..1 across the breast
    size: float  # box side at REFERENCE_ROWS
    seed: int


@dataclass(frozen=True)
class _ImagePlan:
    index: int
    image_id: str
    patient_id: str
    laterality: str
    view: str
    label: int
    density: float
    breast_seed: int
    findings: tuple[_Finding, ...]


def _plan(n: int, seed: int, malignant_fraction: float) -> list[_ImagePlan]:
    rng = np.random.default_rng([seed, 0])
    plans: list[_ImagePlan] = []
    patient = 0
    while len(plans) < n:
        patient_id = f"PH{seed:04d}-{patient:05d}"
        breasts = {}
        for laterality in ("L", "R"):
            malignant = bool(rng.random() < malignant_fraction)
            findings = []
            if malignant:
                findings.append(_draw_finding(rng, str(rng.choice(FINDING_TYPES)), True))
            if rng.random() < (0.25 if malignant else 0.5):
                findings.append(_draw_finding(rng, str(rng.choice(["mass", "calcifications"])), False))
            breasts[laterality] = (int(malignant), float(rng.uniform(0.2, 1.0)), int(rng.integers(2**31)),
                                   tuple(findings))
        for laterality, view in VIEW_ORDER:
            if len(plans) == n:
                break
            label, density, breast_seed, findings = breasts[laterality]
            plans.append(_ImagePlan(len(plans), f"{patient_id}-{laterality}{view}", patient_id, laterality, view,
                                    label, density, breast_seed, findings))
        patient += 1
    return plans


def _draw_finding(rng: np.random.Generator, kind: str, malignant: bool) -> _Finding:
    return _Finding(kind, malignant, depth=float(rng.uniform(0.3, 0.7)), height=float(rng.uniform(-0.5, 0.5)),
                    size=float(np.exp(rng.uniform(np.log(50), np.log(500)))), seed=int(rng.integers(2**31)))


def _texture(rng: np.random.Generator, shape: tuple[int, int], exponent: float) -> np.ndarray:
    """Unit-variance Gaussian noise with a 1/f^exponent amplitude spectrum."""
    fy = np.fft.fftfreq(shape[0])[:, None]
    fx = np.fft.rfftfreq(shape[1])[None, :]
    freq = np.sqrt(fy**2 + fx**2)
    freq[0, 0] = 1.0
    spectrum = np.fft.rfft2(rng.standard_normal(shape)) / freq**exponent
    spectrum[0, 0] = 0
    field = np.fft.irfft2(spectrum, s=shape)
    return (field / field.std()).astype(np.float32)


def _upsample(array: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """Bilinear resize in numpy (no torch: worker processes are forked, and forked OpenMP can hang)."""
    def axis(n_out: int, n_in: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        position = np.clip((np.arange(n_out) + 0.5) * n_in / n_out - 0.5, 0, n_in - 1)
        low = np.minimum(position.astype(int), n_in - 2) if n_in > 1 else np.zeros(n_out, dtype=int)
        return low, np.minimum(low + 1, n_in - 1), (position - low).astype(np.float32)

    r0, r1, fr = axis(size[0], array.shape[0])
    c0, c1, fc = axis(size[1], array.shape[1])
    rows = array[r0] * (1 - fr[:, None]) + array[r1] * fr[:, None]
    return rows[:, c0] * (1 - fc) + rows[:, c1] * fc


def _render(plan: _ImagePlan, size: tuple[int, int]) -> tuple[np.ndarray, list[tuple[str, tuple[int, int, int, int]]]]:
    """The image (chest wall left), as uint16, and its finding boxes (flipped for right breasts)."""
    rows, cols = size
    scale = rows / REFERENCE_ROWS
    breast_rng = np.random.default_rng([plan.breast_seed, 1])
    rng = np.random.default_rng([plan.breast_seed, 2 + VIEW_ORDER.index((plan.laterality, plan.view))])
    mlo = plan.view == "MLO"
    semi_rows = rows * breast_rng.uniform(0.34, 0.44) * (1.12 if mlo else 1.0)
    semi_cols = cols * breast_rng.uniform(0.6, 0.85)
    centre_row = rows * (rng.uniform(0.42, 0.5) if mlo else rng.uniform(0.47, 0.53))

    yy = np.arange(rows, dtype=np.float32)[:, None]
    xx = np.arange(cols, dtype=np.float32)[None, :]
    radius2 = ((yy - centre_row) / semi_rows) ** 2 + (xx / semi_cols) ** 2
    inside = radius2 < 1
    thickness = np.sqrt(np.clip(1 - radius2, 0, 1))

    low = (max(rows // 4, 32), max(cols // 4, 32))
    coarse = _upsample(_texture(rng, low, 1.6), size)
    fine = _upsample(_texture(rng, low, 0.9), size)
    central = np.exp(-(((yy - centre_row) / (0.7 * semi_rows)) ** 2)) * np.exp(-(((xx / semi_cols) - 0.35) ** 2) / 0.2)
    glandular = plan.density * central / (1 + np.exp(-(2.2 * coarse + 0.6 * fine - 0.3)))
    image = inside * (0.28 * thickness**0.4 + 0.32 * glandular * thickness**0.3 + 0.012 * fine)
    image += ((radius2 > 0.985) & inside) * 0.05
    if mlo:
        width, height = semi_cols * rng.uniform(0.22, 0.35), rows * rng.uniform(0.35, 0.55)
        pectoral = (xx / width + yy / height) < 1
        image = np.where(pectoral & inside, 0.42 + 0.02 * coarse, image)

    boxes = []
    for finding in plan.findings:
        row = centre_row + finding.height * semi_rows * np.sqrt(1 - finding.depth**2) + (0.12 * semi_rows if mlo else 0)
        col = finding.depth * semi_cols
        side = finding.size * scale * (1.0 + 0.08 * rng.standard_normal())
        box = _draw_finding_into(image, finding, row, col, max(side, 6.0), scale, thickness)
        if box is not None:
            boxes.append((finding.kind if finding.malignant else f"benign-{finding.kind}", box))

    image += 0.02 + rng.normal(0, 0.006, size).astype(np.float32)
    pixels = (np.clip(image, 0, 1) * 60000).astype(np.uint16)
    if plan.laterality == "R":
        pixels = pixels[:, ::-1]
        boxes = [(kind, (r0, cols - c1, r1, cols - c0)) for kind, (r0, c0, r1, c1) in boxes]
    return np.ascontiguousarray(pixels), boxes


def _draw_finding_into(image, finding, row, col, side, scale, thickness):
    rng = np.random.default_rng(finding.seed)
    contrast = rng.uniform(0.06, 0.14)
    half = int(np.ceil(side / 2)) + 2
    r0, c0 = max(int(row) - half, 0), max(int(col) - half, 0)
    r1, c1 = min(int(row) + half + 1, image.shape[0]), min(int(col) + half + 1, image.shape[1])
    if r1 - r0 < 4 or c1 - c0 < 4:
        return None
    dy = np.arange(r0, r1, dtype=np.float32)[:, None] - row
    dx = np.arange(c0, c1, dtype=np.float32)[None, :] - col
    rho, theta = np.hypot(dy, dx), np.arctan2(dy, dx)
    radius = side / 2
    line_width = max(0.8, 1.4 * scale)
    if finding.kind == "mass":
        core = radius * (0.6 if finding.malignant else 0.85)
        if finding.malignant:
            wobble = sum(rng.uniform(0.04, 0.1) * np.cos(k * theta + rng.uniform(0, 2 * np.pi)) for k in range(3, 8))
            added = 1 / (1 + np.exp((rho / (core * (1 + wobble)) - 1) / 0.09))
            for angle in rng.uniform(0, 2 * np.pi, rng.integers(8, 17)):
                added = np.maximum(added, 0.6 * _ray(dy, dx, angle, core * 0.8, radius * rng.uniform(0.85, 1.0), line_width))
        else:
            stretch = rng.uniform(0.8, 1.2)
            ellipse = np.hypot(dy / (core * stretch), dx / (core / stretch))
            added = 1 / (1 + np.exp((ellipse - 1) / 0.04))
    elif finding.kind == "calcifications":
        added = np.zeros_like(rho)
        count, spread = (rng.integers(10, 26), 0.4) if finding.malignant else (rng.integers(4, 9), 0.85)
        for _ in range(count):
            offset = np.clip(rng.normal(0, spread * radius, 2), -radius, radius) if finding.malignant else rng.uniform(-spread, spread, 2) * radius
            if finding.malignant:
                length, width = rng.uniform(1.0, 4.5) * scale + 0.6, rng.uniform(0.5, 1.0) * scale + 0.5
            else:
                length = width = rng.uniform(1.8, 3.6) * scale + 0.6
            angle = rng.uniform(0, np.pi)
            along = np.cos(angle) * (dx - offset[1]) + np.sin(angle) * (dy - offset[0])
            across = -np.sin(angle) * (dx - offset[1]) + np.cos(angle) * (dy - offset[0])
            added = np.maximum(added, np.exp(-((along / length) ** 2 + (across / width) ** 2)) * rng.uniform(2.0, 3.5))
    elif finding.kind == "architectural_distortion":
        added = np.zeros_like(rho)
        for angle in rng.uniform(0, 2 * np.pi, rng.integers(10, 21)):
            added = np.maximum(added, 0.8 * _ray(dy, dx, angle, radius * 0.08, radius * rng.uniform(0.7, 1.0), line_width))
    else:  # focal asymmetry: a soft density without convex border
        blob = _upsample(_texture(rng, (16, 16), 1.2), (r1 - r0, c1 - c0))
        envelope = np.exp(-(rho / (radius * 0.85)) ** 2)
        added = np.clip(envelope * (0.9 + 0.6 * blob) - 0.25, 0, None)
        added = added / max(float(added.max()), 1e-6)
    local = contrast * added * np.maximum(thickness[r0:r1, c0:c1], 0.3)
    image[r0:r1, c0:c1] += local
    visible = added > 0.1
    if not visible.any():
        return None
    rows_hit, cols_hit = np.nonzero(visible.any(axis=1))[0], np.nonzero(visible.any(axis=0))[0]
    return (r0 + int(rows_hit[0]), c0 + int(cols_hit[0]), r0 + int(rows_hit[-1]) + 1, c0 + int(cols_hit[-1]) + 1)


def _ray(dy, dx, angle, start, stop, width):
    along = np.cos(angle) * dx + np.sin(angle) * dy
    across = -np.sin(angle) * dx + np.cos(angle) * dy
    fade = np.clip(1 - (along - start) / max(stop - start, 1e-3), 0, 1) * (along > start)
    return np.exp(-((across / width) ** 2)) * fade


def _write_dicom(path: Path, pixels: np.ndarray, plan: _ImagePlan, seed: int, size: tuple[int, int]) -> None:
    from pydicom.dataset import Dataset, FileMetaDataset
    from pydicom.uid import ExplicitVRLittleEndian, generate_uid

    sop_class = "1.2.840.10008.5.1.4.1.1.1.2"  # Digital Mammography X-Ray Image Storage - For Presentation
    uid = generate_uid(entropy_srcs=[str(seed), plan.image_id])
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = sop_class
    meta.MediaStorageSOPInstanceUID = uid
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds = Dataset()
    ds.file_meta = meta
    ds.SOPClassUID, ds.SOPInstanceUID = sop_class, uid
    ds.StudyInstanceUID = generate_uid(entropy_srcs=[str(seed), plan.patient_id, "study"])
    ds.SeriesInstanceUID = generate_uid(entropy_srcs=[str(seed), plan.image_id, "series"])
    ds.Modality = "MG"
    ds.Manufacturer = "HCT phantom"
    ds.PatientID = plan.patient_id  # an opaque key; no name, no birth date
    ds.ImageLaterality = plan.laterality
    ds.ViewPosition = plan.view
    ds.PresentationIntentType = "FOR PRESENTATION"
    ds.SamplesPerPixel = 1
    ds.PhotometricInterpretation = "MONOCHROME2"
    ds.Rows, ds.Columns = pixels.shape
    ds.BitsAllocated = ds.BitsStored = 16
    ds.HighBit = 15
    ds.PixelRepresentation = 0
    spacing = 0.065 * 3328 / size[0]
    ds.PixelSpacing = [f"{spacing:.4f}", f"{spacing:.4f}"]
    ds.PixelData = pixels.tobytes()
    ds.save_as(path, enforce_file_format=True)


def _make_image(args: tuple[_ImagePlan, int, tuple[int, int], str]) -> list[tuple[str, tuple[int, int, int, int]]]:
    plan, seed, size, out_dir = args
    pixels, boxes = _render(plan, size)
    _write_dicom(Path(out_dir) / "images" / f"{plan.image_id}.dcm", pixels, plan, seed, size)
    return boxes


def generate_phantom(
    n: int,
    out_dir: str | Path,
    size: tuple[int, int] = (1664, 1280),
    seed: int = 0,
    malignant_fraction: float = 0.3,
    workers: int = 1,
    fractions: tuple[float, float, float] = (0.8, 0.1, 0.1),
) -> list[ImageRecord]:
    """Write ``n`` phantom DICOMs under ``out_dir/images`` and ``out_dir/manifest.csv``; return the records.

    Deterministic by ``seed`` (any ``workers``). Splits are patient-level, by ``seed``.
    A malignant image's record holds only its malignant finding (type and box); a non-malignant
    image's record holds its benign-looking findings, if any.
    """
    if n < 1:
        raise ConfigError(f"n must be at least 1, not {n}.")
    if not 0 <= malignant_fraction <= 1:
        raise ConfigError(f"malignant_fraction must lie in [0, 1], not {malignant_fraction}.")
    if min(size) < 64:
        raise ConfigError(f"Phantom size {size} is too small; use at least 64 pixels a side.")
    out_dir = Path(out_dir)
    (out_dir / "images").mkdir(parents=True, exist_ok=True)
    plans = _plan(n, seed, malignant_fraction)
    tasks = [(plan, seed, tuple(size), str(out_dir)) for plan in plans]
    if workers > 1:
        context = multiprocessing.get_context("fork" if "fork" in multiprocessing.get_all_start_methods() else None)
        with concurrent.futures.ProcessPoolExecutor(workers, mp_context=context) as pool:
            all_boxes = list(pool.map(_make_image, tasks, chunksize=max(1, n // (8 * workers))))
    else:
        all_boxes = [_make_image(task) for task in tasks]
    records = []
    for plan, boxes in zip(plans, all_boxes):
        shown = [(kind, box) for kind, box in boxes if kind.startswith("benign-") != bool(plan.label)]
        records.append(make_record(
            image_id=plan.image_id, path=str((out_dir / "images" / f"{plan.image_id}.dcm").resolve()),
            patient_id=plan.patient_id, exam_id=f"{plan.patient_id}-E1", laterality=plan.laterality,
            view=plan.view, label=plan.label,
            finding_types=tuple(dict.fromkeys(kind.removeprefix("benign-") for kind, _ in shown)),
            finding_boxes=[box for _, box in shown],
        ))
    records = assign_splits(records, seed, fractions)
    write_manifest(records, out_dir / MANIFEST_NAME)
    return records
