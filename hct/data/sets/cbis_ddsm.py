"""CBIS-DDSM adapter: the case description CSVs (mass_/calc_case_description_*.csv) -> records.

Files are found by their DICOM headers, not their paths: every CSV path holds the image's
StudyInstanceUID and SeriesInstanceUID (``<subject>/<study UID>/<series UID>/000000.dcm``), and so
does every downloaded file's header, whatever the NBIA Data Retriever named the folders (descriptive
``07-20-2016-DDSM-74994/1.000000-full mammogram images-24515/1-1.dcm`` or bare UIDs) and wherever a
user moved them. ``image_root`` may be the ``CBIS-DDSM`` folder or any folder above it.

Labels: an image is malignant when any of its abnormalities has pathology MALIGNANT. A malignant
image lists the types, boxes and masks of its malignant abnormalities; a non-malignant image all of
its own. An abnormality's box is the bounding box of its ROI mask, told from the cropped image by
content (binary, and the full image's shape), never by file name: the CSV's "cropped image file
path" and "ROI mask file path" are swapped for some rows. Splits: Training -> train, Test -> test.

A mammogram with both a mass and a calcification is two files, one per subset (other UIDs, same
patient, side, view and size): it is one record with the abnormalities of both, test when either
CSV lists it as test. The published CSVs hold 71 such pairs, 29 across the training/test split.
"""

from __future__ import annotations

from collections import defaultdict
from pathlib import Path

from hct.data.records import Box, ImageRecord
from hct.data.sets.dicom_index import DicomIndex, Progress, binary_boxes, index_dicoms
from hct.data.sets.manifest import make_record
from hct.data.sets.report import DataReport
from hct.data.sets.tables import read_table
from hct.errors import ConfigError

REQUIRED = (
    "patient_id",
    "left or right breast",
    "image view",
    "abnormality type",
    "pathology",
    "image file path",
    "cropped image file path",
    "ROI mask file path",
)
CROP, MASK = "cropped image file path", "ROI mask file path"


def finding_types_of(row: dict) -> list[str]:
    """The record finding types of one CSV row (mass, calcifications, distortion, asymmetry)."""
    kind = row["abnormality type"].strip().lower()
    types = ["mass"] if kind == "mass" else ["calcifications"] if kind.startswith("calc") else []
    shape = (row.get("mass shape") or "").upper()
    if "ARCHITECTURAL_DISTORTION" in shape:
        types.append("architectural_distortion")
    if "ASYMMETRIC" in shape:
        types.append("focal_asymmetry")
    return types


def read_case_descriptions(csv_paths: list[str | Path]) -> list[dict]:
    """The rows of CBIS-DDSM case description CSVs, names and values stripped, columns checked."""
    return [
        {key: value.strip() for key, value in row.items()}
        for csv_path in csv_paths
        for row in read_table(csv_path, REQUIRED, "CBIS-DDSM table", "pass a mass_ or calc_case_description CSV.")
    ]


def series_key(csv_path: str) -> tuple[str, str]:
    """(StudyInstanceUID, SeriesInstanceUID) named by a CSV path ``<subject>/<study>/<series>/<file>``."""
    parts = csv_path.replace("\\", "/").split("/")
    if len(parts) != 4:
        raise ConfigError(
            f"CBIS-DDSM path {csv_path!r} is not <subject>/<study UID>/<series UID>/<file>; "
            "pass the case description CSVs as published by TCIA."
        )
    return parts[1], parts[2]


def scan_cbis_ddsm(
    csv_paths: list[str | Path],
    image_root: str | Path,
    cache_dir: str | Path | None = None,
    workers: int | None = None,
    progress: Progress | None = None,
) -> DataReport:
    """The records of the CSVs' images found under ``image_root``, what is missing or unreadable,
    and how the ROI masks were resolved."""
    rows = read_case_descriptions(csv_paths)
    index = index_dicoms(image_root, cache_dir, workers, progress)
    series: dict[tuple[str, str], list[dict]] = defaultdict(list)
    for file in index.table.to_dict("records"):
        series[(file["study_uid"], file["series_uid"])].append(file)
    images: dict[str, list[int]] = defaultdict(list)  # image file path -> its abnormality rows
    for number, row in enumerate(rows):
        images[row["image file path"]].append(number)
    found, missing, unreadable = {}, [], []
    for file_path in images:
        files = series.get(series_key(file_path), [])
        usable = [f for f in files if not f["error"]]
        name = file_path.split("/")[0]
        if usable:
            found[file_path] = max(usable, key=lambda f: f["rows"] * f["cols"])
        elif files:
            unreadable.append(f"{name}: {files[0]['error']}")
        else:
            missing.append(name)
    abnormalities = {n: (rows[n], found[p]) for p in found for n in images[p]}
    masks, notes = _masks(index, series, abnormalities, workers, progress)
    mammograms, merged = group_mammograms(rows, images, found)
    records = [
        case_record(
            [rows[n] for p in paths for n in images[p]],
            [masks.get(n) for p in paths for n in images[p]],
            index.path_of(found[paths[0]]["path"]),
        )
        for paths in mammograms
    ]
    notes += overlap_notes(records, merged)
    listed = len(images) - sum(len(paths) - 1 for paths in merged)  # mammograms, each once
    return DataReport(
        "cbis-ddsm",
        str(image_root),
        tuple(records),
        listed,
        missing=tuple(missing),
        unreadable=tuple(unreadable),
        notes=tuple(notes),
        files_indexed=len(index.table),
        files_read=index.read,
        index_seconds=index.seconds,
    )


def group_mammograms(
    rows: list[dict], images: dict[str, list[int]], found: dict[str, dict]
) -> tuple[list[list[str]], list[list[str]]]:
    """The found image file paths grouped by mammogram, and the groups of more than one.

    The mass and the calcification subsets each converted their DDSM mammograms to DICOM: a mammogram
    with both kinds of abnormality is two files with other UIDs (same patient, side and view, same
    size), sometimes one in a training CSV and the other in a test CSV. Such files are one mammogram,
    listed first from a test CSV so that it keeps the official test split."""
    groups: dict[tuple, list[str]] = defaultdict(list)
    for path in found:
        first = rows[images[path][0]]
        groups[
            (
                first["patient_id"],
                first["left or right breast"].upper(),
                first["image view"].upper(),
                found[path]["rows"],
                found[path]["cols"],
            )
        ].append(path)
    mammograms = [sorted(paths, key=lambda p: "-Test_" not in p.split("/")[0]) for paths in groups.values()]
    return mammograms, [paths for paths in mammograms if len(paths) > 1]


def overlap_notes(records: list[ImageRecord], merged: list[list[str]]) -> list[str]:
    """What a user of the official split should know: mammograms in both subsets, patients in both splits."""
    notes = []
    if merged:
        across = [paths for paths in merged if len({"-Test_" in p for p in paths}) > 1]
        notes.append(
            f"mammograms listed in both the mass and the calc CSVs (same patient, side, view and size; "
            f"each is one record with the findings of both, in the test split when either lists it as "
            f"test): {len(merged)}, of which {len(across)} in a training and a test CSV, e.g. "
            + ", ".join(" = ".join(p.split("/")[0] for p in paths) for paths in merged[:2])
        )
    splits: dict[str, set[str]] = defaultdict(set)
    for record in records:
        splits[record.patient_id].add(record.split)
    both = sorted(patient for patient, kinds in splits.items() if len(kinds) > 1)
    if both:
        notes.append(
            f"patients with images in both the training and the test CSVs (kept as listed, so a patient-"
            f"level evaluation sees them in both): {len(both)}, e.g. {', '.join(both[:3])}"
        )
    return notes


def _masks(
    index: DicomIndex,
    series: dict,
    abnormalities: dict[int, tuple[dict, dict]],
    workers: int | None,
    progress: Progress | None,
) -> tuple[dict[int, tuple[str, Box]], list[str]]:
    """(mask path, box) of each abnormality (row number -> (row, full image file)) whose ROI series
    hold a binary image of the full image's shape, and notes on what was resolved."""
    candidates = {}
    for number, (row, full) in abnormalities.items():
        files = {f["path"]: f for key in (series_key(row[CROP]), series_key(row[MASK])) for f in series.get(key, [])}
        candidates[number] = [
            f for f in files.values() if not f["error"] and (f["rows"], f["cols"]) == (full["rows"], full["cols"])
        ]
    boxes = binary_boxes(index, [f["path"] for files in candidates.values() for f in files], workers, progress)
    masks, swapped, without = {}, [], []
    for number, files in candidates.items():
        row = abnormalities[number][0]
        mask = next((f for f in files if boxes[f["path"]] is not None), None)
        if mask is None:
            without.append(row[MASK].split("/")[0])
            continue
        masks[number] = (index.path_of(mask["path"]), boxes[mask["path"]])
        if (mask["study_uid"], mask["series_uid"]) != series_key(row[MASK]):
            swapped.append(row[MASK].split("/")[0])
    notes = []
    if swapped:
        notes.append(
            f"ROI mask and cropped image swapped in the CSV (told apart by content): {len(swapped)}, "
            f"e.g. {', '.join(swapped[:3])}"
        )
    if without:
        notes.append(
            f"abnormalities without a ROI mask of their image's size (so without a box): {len(without)}, "
            f"e.g. {', '.join(without[:3])}"
        )
    return masks, notes


def case_record(rows: list[dict], masks: list[tuple[str, Box] | None], path: str) -> ImageRecord:
    """The record of one mammogram (image file ``path``) from its abnormality rows and their (mask, box)."""
    malignant = [r["pathology"].upper() == "MALIGNANT" for r in rows]
    kept = [i for i in range(len(rows)) if malignant[i] or not any(malignant)]
    first = rows[0]
    subject = first["image file path"].split("/")[0]
    outlined = [masks[i] for i in kept if masks[i] is not None]
    return make_record(
        image_id=subject,
        path=path,
        patient_id=first["patient_id"],
        exam_id=first["patient_id"],
        laterality=first["left or right breast"][:1].upper(),
        view=first["image view"].upper(),
        label=int(any(malignant)),
        finding_types=tuple(dict.fromkeys(t for i in kept for t in finding_types_of(rows[i]))),
        finding_boxes=[box for _, box in outlined],
        finding_masks=[path for path, _ in outlined],
        split="test" if "-Test_" in subject else "train" if "-Training_" in subject else "",
    )
