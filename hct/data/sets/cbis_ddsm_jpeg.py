"""CBIS-DDSM as most public code has it: the JPEG re-release (as on Kaggle), read through its ``dicom_info.csv``.

The release holds ``jpeg/<SeriesInstanceUID>/1-NNN.jpg`` (a series of ROI images holds two files: the
cropped image and the ROI mask) and ``csv/``: ``dicom_info.csv`` (one row per image: its ``image_path``,
``SeriesInstanceUID`` and ``SeriesDescription`` — full mammogram images, cropped images or ROI mask
images, sometimes empty), ``meta.csv`` and the four case description CSVs of the TCIA release. A case
row's image file path names the series UID (``<subject>/<study UID>/<series UID>/<file>``), which
``dicom_info.csv`` maps to its JPEG; labels, laterality, view, split and finding types come from the
case rows as for the TCIA layouts (:mod:`hct.data.sets.cbis_ddsm`).

The pixels are 8-bit lossy JPEGs converted from the 16-bit DICOMs: 256 grey levels instead of up to
65,536, with compression artefacts. The ROI masks are lossy too, so only nearly binary: each is
thresholded at half its maximum and its largest connected component kept (:func:`read_lossy_mask`).
"""

from __future__ import annotations

import time
from collections import defaultdict
from pathlib import Path

from hct.data.sets.cbis_ddsm import (
    CROP,
    MASK,
    case_record,
    group_mammograms,
    overlap_notes,
    read_case_descriptions,
    series_key,
)
from hct.data.sets.dicom_index import Progress, mask_boxes, parallel_map
from hct.data.sets.report import DataReport
from hct.data.sets.tables import read_table

INFO_NAME = "dicom_info.csv"
INFO_COLUMNS = ("image_path", "SeriesInstanceUID", "SeriesDescription")
FULL, CROPPED = "full mammogram images", "cropped images"
LOSSY_NOTE = (
    "JPEG re-release: its pixels are 8-bit lossy JPEGs converted from the 16-bit DICOMs (256 grey "
    "levels, compression artefacts), so a model trained or an ERF measured on them is not comparable "
    "with one on the TCIA DICOMs; its boxes come from the lossy ROI masks, thresholded at half their "
    "maximum with the largest component kept"
)


def find_jpeg_release(source: Path) -> Path | None:
    """The ``dicom_info.csv`` of a JPEG re-release at or under ``source`` (next to a ``jpeg/`` folder), or None."""
    if not source.is_dir():
        return None
    for info in sorted(source.rglob(INFO_NAME)):
        if (info.parent.parent / "jpeg").is_dir():
            return info
    return None


def _jpeg_files(info: Path) -> tuple[dict[str, list[dict]], int]:
    """Series UID -> its JPEG files (path, kind, rows, cols, error) listed in ``dicom_info.csv``, and how many
    headers were read."""
    from PIL import Image

    base = info.parent.parent  # the folder holding csv/ and jpeg/
    rows = read_table(info, INFO_COLUMNS, "CBIS-DDSM table", "pass the JPEG re-release's csv/dicom_info.csv.")
    series: dict[str, list[dict]] = defaultdict(list)
    for row in rows:
        listed = row["image_path"].replace("\\", "/")
        path = base / listed[listed.find("jpeg/") :] if "jpeg/" in listed else base / listed
        entry = {"path": str(path), "kind": row["SeriesDescription"].strip().lower(), "rows": 0, "cols": 0, "error": ""}
        try:
            with Image.open(path) as image:
                entry["cols"], entry["rows"] = image.size
        except FileNotFoundError:
            entry["error"] = "missing"
        except Exception as err:  # noqa: BLE001 - Pillow raises many kinds for a damaged file
            entry["error"] = f"not a readable JPEG ({type(err).__name__})"
        series[row["SeriesInstanceUID"].strip()].append(entry)
    return series, len(rows)


def scan_cbis_ddsm_jpeg(
    csv_paths: list[str | Path], info: str | Path, workers: int | None = None, progress: Progress | None = None
) -> DataReport:
    """The records of the case CSVs' mammograms in the JPEG re-release whose ``dicom_info.csv`` is ``info``."""
    started = time.perf_counter()
    info = Path(info)
    rows = read_case_descriptions(csv_paths)
    series, listed_files = _jpeg_files(info)
    images: dict[str, list[int]] = defaultdict(list)
    for number, row in enumerate(rows):
        images[row["image file path"]].append(number)
    found, missing, unreadable = {}, [], []
    for file_path in images:
        files = [f for f in series.get(series_key(file_path)[1], []) if f["kind"] in (FULL, "")]
        usable = [f for f in files if not f["error"]]
        name = file_path.split("/")[0]
        if usable:
            found[file_path] = max(usable, key=lambda f: f["rows"] * f["cols"])
        elif any(f["error"] != "missing" for f in files):
            unreadable.append(f"{name}: {next(f['error'] for f in files if f['error'] != 'missing')}")
        else:
            missing.append(name)
    masks, notes = _masks(rows, images, found, series, workers, progress)
    mammograms, merged = group_mammograms(rows, images, found)
    records = [
        case_record(
            [rows[n] for p in paths for n in images[p]],
            [masks.get(n) for p in paths for n in images[p]],
            found[paths[0]]["path"],
        )
        for paths in mammograms
    ]
    notes = [LOSSY_NOTE, *notes, *overlap_notes(records, merged)]
    listed = len(images) - sum(len(paths) - 1 for paths in merged)
    return DataReport(
        "cbis-ddsm",
        str(info.parent.parent),
        tuple(records),
        listed,
        missing=tuple(missing),
        unreadable=tuple(unreadable),
        notes=tuple(notes),
        files_indexed=listed_files,
        files_read=listed_files,
        index_seconds=time.perf_counter() - started,
    )


def _masks(
    rows: list[dict],
    images: dict[str, list[int]],
    found: dict[str, dict],
    series: dict[str, list[dict]],
    workers: int | None,
    progress: Progress | None,
) -> tuple[dict[int, tuple[str, tuple]], list[str]]:
    """(mask path, box) per abnormality row whose ROI series holds a mask of its mammogram's size."""
    candidates = {}
    for file_path, full in found.items():
        for number in images[file_path]:
            keys = {series_key(rows[number][CROP])[1], series_key(rows[number][MASK])[1]}
            candidates[number] = [
                f["path"]
                for key in keys
                for f in series.get(key, [])
                if not f["error"] and f["kind"] != CROPPED and (f["rows"], f["cols"]) == (full["rows"], full["cols"])
            ]
    paths = list(dict.fromkeys(p for files in candidates.values() for p in files))
    boxes = dict(zip(paths, parallel_map(mask_boxes, paths, workers, progress)))
    masks, without = {}, []
    for number, files in candidates.items():
        mask = next((p for p in files if boxes[p] is not None), None)
        if mask is None:
            without.append(rows[number][MASK].split("/")[0])
        else:
            masks[number] = (mask, boxes[mask])
    notes = (
        [
            f"abnormalities without a ROI mask of their image's size (so without a box): {len(without)}, "
            f"e.g. {', '.join(without[:3])}"
        ]
        if without
        else []
    )
    return masks, notes
