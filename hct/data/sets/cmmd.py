"""CMMD adapter (The Chinese Mammography Database, TCIA): clinical-data spreadsheet + DICOM tree -> records.

The spreadsheet (``CMMD_clinicaldata_revision.xlsx``, or that table saved as CSV with ``,`` or ``;``
between values, as some public code has it) has one row per breast: ID1 (the subject, also
each image's DICOM PatientID), LeftRight, Age, number, abnormality (calcification, mass or both),
classification (Benign or Malignant, biopsy-confirmed) and subtype. Laterality and view come from
each image's DICOM tags (ImageLaterality; ViewPosition or ViewCodeSequence), so the folder layout
does not matter. An image takes its breast's label (1 Malignant, 0 Benign) and abnormality types; an
image of a breast the spreadsheet does not list keeps label -1. CMMD has no boxes and no splits.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from hct.data.sets.dicom_index import Progress, index_dicoms, subject_digest
from hct.data.sets.manifest import make_record
from hct.data.sets.report import DataReport
from hct.errors import ConfigError

REQUIRED = ("ID1", "LeftRight", "classification")
ABNORMALITY_TYPES = {"mass": ("mass",), "calcification": ("calcifications",), "both": ("mass", "calcifications")}
CLASSIFICATION_LABELS = {"malignant": 1, "benign": 0}


def read_clinical_data(path: str | Path) -> dict[tuple[str, str], dict]:
    """Per breast (ID1, 'L' or 'R'): its ``label`` (1, 0), finding ``types`` and first spreadsheet
    ``row`` (a breast listed twice is malignant when either row says so)."""
    path = Path(path)
    if not path.is_file():
        raise ConfigError(
            f"CMMD clinical data {path} does not exist; download CMMD_clinicaldata_revision.xlsx "
            "from the CMMD page on TCIA."
        )
    try:
        table = (
            pd.read_excel(path, dtype=str)
            if path.suffix.lower() in (".xlsx", ".xls")
            else pd.read_csv(path, dtype=str, sep=None, engine="python", encoding="utf-8-sig")
        )  # ',' or ';', sniffed
    except ImportError as err:
        raise ConfigError("Reading the CMMD spreadsheet needs openpyxl: pip install openpyxl.") from err
    except (ValueError, pd.errors.ParserError, UnicodeDecodeError) as err:
        raise ConfigError(f"{path} is not a readable spreadsheet or CSV ({err}).") from err
    missing = set(REQUIRED) - {str(c).strip() for c in table.columns}
    if missing:
        raise ConfigError(f"{path} lacks CMMD column(s) {sorted(missing)}; pass CMMD_clinicaldata_revision.xlsx.")
    table = table.rename(columns=lambda c: str(c).strip()).fillna("")
    breasts: dict[tuple[str, str], dict] = {}
    for line, row in enumerate(table.to_dict("records"), start=2):
        side, classification = row["LeftRight"].strip().upper()[:1], row["classification"].strip().lower()
        if side not in ("L", "R") or classification not in CLASSIFICATION_LABELS:
            raise ConfigError(
                f"{path}, row {line}: LeftRight {row['LeftRight']!r} / classification "
                f"{row['classification']!r}; expected L or R and Benign or Malignant."
            )
        breast = breasts.setdefault((row["ID1"].strip(), side), {"label": 0, "types": (), "row": line})
        breast["label"] = max(breast["label"], CLASSIFICATION_LABELS[classification])
        types = ABNORMALITY_TYPES.get(str(row.get("abnormality", "")).strip().lower(), ())
        breast["types"] = tuple(dict.fromkeys(breast["types"] + types))
    return breasts


def scan_cmmd(
    clinical_path: str | Path,
    image_root: str | Path,
    cache_dir: str | Path | None = None,
    workers: int | None = None,
    progress: Progress | None = None,
) -> DataReport:
    """The records of the listed subjects' images under ``image_root``, the listed breasts without an
    image (missing, named by spreadsheet row, not by subject) and the files that cannot be read."""
    breasts = read_clinical_data(clinical_path)
    subjects = {subject_digest(subject): subject for subject, _ in breasts}
    index = index_dicoms(image_root, cache_dir, workers, progress)
    records, unlisted, no_side = [], 0, []
    for file in index.usable().to_dict("records"):
        subject = subjects.get(file["subject_digest"])
        if subject is None:
            continue
        if file["laterality"] not in ("L", "R"):
            no_side.append(file["path"])
            continue
        breast = breasts.get((subject, file["laterality"]), {"label": -1, "types": ()})
        unlisted += breast["label"] == -1
        records.append(
            make_record(
                image_id=file["sop_uid"] or file["path"],
                path=index.path_of(file["path"]),
                patient_id=subject,
                exam_id=subject,
                laterality=file["laterality"],
                view=file["view"],
                label=breast["label"],
                finding_types=breast["types"],
            )
        )
    imaged = {(r.patient_id, r.laterality) for r in records}
    errors = index.table[index.table["error"] != ""]
    notes = [f"images of breasts the spreadsheet does not list (label unknown): {unlisted}"] if unlisted else []
    if no_side:
        notes.append(f"images without ImageLaterality (left out): {len(no_side)}, e.g. {', '.join(no_side[:3])}")
    return DataReport(
        "cmmd",
        str(image_root),
        tuple(records),
        len(breasts),
        unit="breasts",
        missing=tuple(f"spreadsheet row {b['row']} ({key[1]})" for key, b in breasts.items() if key not in imaged),
        unreadable=tuple(f"{p}: {e}" for p, e in zip(errors["path"], errors["error"])),
        notes=tuple(notes),
        files_indexed=len(index.table),
        files_read=index.read,
        index_seconds=index.seconds,
    )
