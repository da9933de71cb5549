"""Tiny public data set trees laid out exactly as downloaded, with generated DICOMs of 64x48 pixels.

CBIS-DDSM (TCIA, NBIA Data Retriever in its descriptive or its bare-UID folder mode) from the case
description CSVs in ``fixtures/data/cbis_ddsm``; VinDr-Mammo (PhysioNet release) from the two CSVs in
``fixtures/data/vindr``; CMMD (TCIA) with its clinical-data spreadsheet; OPTIMAM images for the
OMI-DB JSON in ``fixtures/data/omidb``.
"""

from __future__ import annotations

import csv
import hashlib
import json
import shutil
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
from pydicom.dataset import Dataset

from hct.data.image.dicom_write import mammogram_dataset, write_dataset
from tests import paths

FIXTURES = paths.FIXTURES / "data"  # the public data sets' fixture files

SHAPE = (64, 48)

# CBIS-DDSM rows whose case-description CSV lists the ROI mask as the cropped image and vice versa
CBIS_SWAPPED = {"Mass-Test_P_00016_LEFT_MLO_1"}
CBIS_NOT_DOWNLOADED = {"Mass-Test_P_00018_LEFT_CC"}
CBIS_MASK_OF_ANOTHER_SHAPE = {"Calc-Test_P_00038_RIGHT_MLO_1"}


def uid(*parts: str) -> str:
    return "2.25." + str(int(hashlib.sha256("|".join(parts).encode()).hexdigest(), 16) % 10**38)


def write_dicom(path: Path, pixels: np.ndarray, **tags) -> Path:
    """An uncompressed DICOM of ``pixels`` (uint8 or uint16) with ``tags``."""
    with warnings.catch_warnings():  # VinDr-Mammo's UIDs are md5 hex digests, not valid DICOM UIDs
        warnings.simplefilter("ignore", UserWarning)
        return _write_dicom(path, pixels, tags)


def _write_dicom(path: Path, pixels: np.ndarray, tags: dict) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    write_dataset(mammogram_dataset(pixels, sop_instance=tags.pop("SOPInstanceUID", uid(str(path))), **tags), path)
    return path


def breast(laterality: str, seed: int = 0, shape: tuple[int, int] = SHAPE) -> np.ndarray:
    """A bright half-ellipse against the chest wall (left side of the image for a left breast)."""
    rows, cols = np.mgrid[0 : shape[0], 0 : shape[1]]
    wall = 0 if laterality == "L" else shape[1] - 1
    inside = ((rows - shape[0] / 2) / (shape[0] * 0.45)) ** 2 + ((cols - wall) / (shape[1] * 0.8)) ** 2 < 1
    noise = np.random.default_rng(seed).integers(0, 400, shape)
    return (np.where(inside, 2500, 100) + noise).astype(np.uint16)


def mask_box(abnormality: int) -> tuple[int, int, int, int]:
    """The ROI mask's box (row0, col0, row1, col1) of abnormality ``abnormality`` of an image."""
    return 8 + 10 * (abnormality - 1), 10, 24 + 10 * (abnormality - 1), 30


def _tcia_folders(layout: str, study: str, series: str, description: str) -> str:
    if layout == "uids":
        return f"{study}/{series}"
    return f"07-20-2016-DDSM-NA-{study[-5:]}/1.000000-{description}-{series[-5:]}"


def _uids(csv_path: str) -> tuple[str, str, str]:
    subject, study, series, _ = csv_path.strip().split("/")
    return subject, study, series


def cbis_ddsm_tree(root: Path, layout: str = "descriptive", csvs: tuple[str, ...] = ("*.csv",)) -> Path:
    """``root/CBIS-DDSM/...`` as the NBIA Data Retriever writes it (``layout``: 'descriptive' or
    'uids'), the case description CSVs copied to ``root``. Returns the CBIS-DDSM folder."""
    folder = root / "CBIS-DDSM"
    root.mkdir(parents=True, exist_ok=True)
    rows = []
    for pattern in csvs:
        for csv_path in sorted((FIXTURES / "cbis_ddsm").glob(pattern)):
            shutil.copy(csv_path, root / csv_path.name)
            with open(csv_path, newline="") as handle:
                rows += list(csv.DictReader(handle))
    for row in rows:
        subject, study, series = _uids(row["image file path"])
        if subject in CBIS_NOT_DOWNLOADED:
            continue
        side = row["left or right breast"][0]
        full = folder / subject / _tcia_folders(layout, study, series, "full mammogram images") / "1-1.dcm"
        if not full.exists():
            write_dicom(
                full,
                breast(side, seed=len(rows)),
                PatientID=subject,
                StudyInstanceUID=study,
                SeriesInstanceUID=series,
                SeriesDescription="full mammogram images",
            )
        _write_roi(folder, layout, row)
    return folder


def _roi(row: dict) -> tuple[str, str, str, str, np.ndarray, np.ndarray]:
    """A case row's ROI: subject, study, mask and crop series (swapped where the CSVs swap them), the binary
    mask and the cropped image's pixels."""
    mask_subject, study, mask_series = _uids(row["ROI mask file path"])
    _, _, crop_series = _uids(row["cropped image file path"])
    if mask_subject in CBIS_SWAPPED:
        mask_series, crop_series = crop_series, mask_series
    row0, col0, row1, col1 = mask_box(int(row["abnormality id"]))
    mask = np.zeros(SHAPE if mask_subject not in CBIS_MASK_OF_ANOTHER_SHAPE else (60, 48), dtype=np.uint8)
    mask[row0:row1, col0:col1] = 255
    return mask_subject, study, mask_series, crop_series, mask, breast("L", seed=7)[row0:row1, col0:col1]


def _write_roi(folder: Path, layout: str, row: dict) -> None:
    mask_subject, study, mask_series, crop_series, mask, crop = _roi(row)
    if mask_series == crop_series:  # one series holds both; which file is 1-1 varies, as in the download
        files = (
            [("1-1.dcm", crop), ("1-2.dcm", mask)]
            if int(row["abnormality id"]) % 2
            else [("1-1.dcm", mask), ("1-2.dcm", crop)]
        )
        where = folder / mask_subject / _tcia_folders(layout, study, mask_series, "ROI mask images")
        for name, pixels in files:
            write_dicom(
                where / name,
                pixels,
                PatientID=mask_subject,
                StudyInstanceUID=study,
                SeriesInstanceUID=mask_series,
                SeriesDescription="ROI mask images",
            )
        return
    for series, pixels, description in ((mask_series, mask, "ROI mask images"), (crop_series, crop, "cropped images")):
        where = folder / mask_subject / _tcia_folders(layout, study, series, description)
        write_dicom(
            where / "1-1.dcm",
            pixels,
            PatientID=mask_subject,
            StudyInstanceUID=study,
            SeriesInstanceUID=series,
            SeriesDescription=description,
        )


VINDR_NOT_DOWNLOADED = 11  # the 12th image of breast-level_annotations.csv


def vindr_tree(root: Path) -> Path:
    """The PhysioNet release: ``root/physionet.org/files/vindr-mammo/1.0.0/`` with both CSVs and
    ``images/<study_id>/<image_id>.dicom`` (the last image of the CSVs left out). Returns that folder."""
    release = root / "physionet.org" / "files" / "vindr-mammo" / "1.0.0"
    release.mkdir(parents=True)
    for name in ("breast-level_annotations.csv", "finding_annotations.csv"):
        shutil.copy(FIXTURES / "vindr" / name, release / name)
    table = pd.read_csv(release / "breast-level_annotations.csv")
    for i, row in table.iterrows():
        if i != VINDR_NOT_DOWNLOADED:
            write_dicom(
                release / "images" / row.study_id / f"{row.image_id}.dicom",
                breast(row.laterality, seed=i),
                StudyInstanceUID=row.study_id,
                SeriesInstanceUID=row.series_id,
                SOPInstanceUID=row.image_id,
                ImageLaterality=row.laterality,
                ViewPosition=row.view_position,
            )
    return release


# (ID1, LeftRight, abnormality, classification, subtype); D2-0002's images were not downloaded
CMMD_BREASTS = [
    ("D1-0001", "L", "calcification", "Benign", None),
    ("D1-0002", "L", "mass", "Malignant", "Luminal A"),
    ("D1-0002", "R", "calcification", "Benign", None),
    ("D1-0003", "R", "both", "Malignant", "HER2-enriched"),
    ("D2-0001", "L", "mass", "Malignant", "Luminal B"),
    ("D2-0002", "R", "mass", "Benign", None),
]
# (patient, laterality) of the images in the tree: D2-0001 also has an image of its unlisted right breast
CMMD_IMAGES = [
    ("D1-0001", "L"),
    ("D1-0002", "L"),
    ("D1-0002", "R"),
    ("D1-0003", "R"),
    ("D2-0001", "L"),
    ("D2-0001", "R"),
]
VIEW_CODES = {"CC": ("399162004", "cranio-caudal"), "MLO": ("399368009", "medio-lateral oblique")}


def cmmd_tree(root: Path) -> Path:
    """TCIA's CMMD download: ``root/CMMD/<ID1>/<study>/<series>/1-N.dcm`` (laterality in
    ImageLaterality, view in ViewCodeSequence only) and ``root/CMMD_clinicaldata_revision.xlsx``."""
    root.mkdir(parents=True, exist_ok=True)
    clinical = pd.DataFrame(CMMD_BREASTS, columns=["ID1", "LeftRight", "abnormality", "classification", "subtype"])
    clinical.insert(2, "Age", 50)
    clinical.insert(3, "number", 2)
    clinical.to_excel(root / "CMMD_clinicaldata_revision.xlsx", index=False)
    counts: dict[str, int] = {}
    for i, (patient, side) in enumerate(CMMD_IMAGES):
        folder = root / "CMMD" / patient / f"07-18-2010-NA-NA-{i:05d}" / f"1.000000-NA-{i + 70000}"
        for code, meaning in VIEW_CODES.values():
            counts[patient] = counts.get(patient, 0) + 1
            item = Dataset()
            item.CodeValue, item.CodingSchemeDesignator, item.CodeMeaning = code, "SCT", meaning
            write_dicom(
                folder / f"1-{counts[patient]}.dcm",
                breast(side, seed=i),
                PatientID=patient,
                StudyInstanceUID=uid(patient, "study"),
                SeriesInstanceUID=uid(patient, "series"),
                ImageLaterality=side,
                ViewCodeSequence=[item],
            )
    return root / "CMMD"


def optimam_images(root: Path) -> Path:
    """``root/<client>/<study>/<image>.dcm`` for every image of the OMI-DB fixture's JSON."""
    for header in sorted((FIXTURES / "omidb" / "data").glob("*/*/*.json")):
        tags = json.loads(header.read_text())
        laterality = tags.get("00200062", {}).get("Value", ["L"])[0]
        client, study = header.parts[-3], header.parts[-2]
        write_dicom(root / client / study / f"{header.stem}.dcm", breast(laterality), ImageLaterality=laterality)
    return root


CBIS_JPEG_NO_DESCRIPTION = "Mass-Test_P_00017_RIGHT_CC"  # its full image's SeriesDescription is empty in dicom_info


def cbis_ddsm_jpeg_tree(root: Path) -> Path:
    """CBIS-DDSM's JPEG re-release (as on Kaggle): ``root/jpeg/<SeriesInstanceUID>/1-NNN.jpg`` and ``root/csv/``
    with dicom_info.csv, meta.csv and the case description CSVs. 8-bit lossy JPEGs; each ROI mask has JPEG
    ringing and a speck far from its box. The same quirks as the TCIA tree (a mammogram not downloaded, a mask
    of another shape, a series holding both the crop and the mask). Returns ``root``."""
    from PIL import Image

    (root / "csv").mkdir(parents=True, exist_ok=True)
    rows, info = [], []
    for csv_path in sorted((FIXTURES / "cbis_ddsm").glob("*.csv")):
        shutil.copy(csv_path, root / "csv" / csv_path.name)
        with open(csv_path, newline="") as handle:
            rows += list(csv.DictReader(handle))

    def write(subject: str, study: str, series: str, name: str, pixels: np.ndarray, description: str) -> None:
        path = root / "jpeg" / series / name
        if subject not in CBIS_NOT_DOWNLOADED or description != "full mammogram images":
            path.parent.mkdir(parents=True, exist_ok=True)
            Image.fromarray(pixels).save(path, quality=75)
        described = "" if subject == CBIS_JPEG_NO_DESCRIPTION and description.startswith("full") else description
        info.append(
            {
                "file_path": f"CBIS-DDSM/dicom/{series}/{name[:-4]}.dcm",
                "image_path": f"CBIS-DDSM/jpeg/{series}/{name}",
                "PatientID": subject,
                "Rows": pixels.shape[0],
                "Columns": pixels.shape[1],
                "SeriesDescription": described,
                "SeriesInstanceUID": series,
                "StudyInstanceUID": study,
            }
        )

    for number, row in enumerate(rows):
        subject, study, series = _uids(row["image file path"])
        if not any(entry["SeriesInstanceUID"] == series for entry in info):
            side = row["left or right breast"][0]
            write(
                subject,
                study,
                series,
                f"1-{100 + number}.jpg",
                (breast(side, seed=number) // 12).astype(np.uint8),
                "full mammogram images",
            )
        mask_subject, roi_study, mask_series, crop_series, mask, crop = _roi(row)
        mask[58:60, 44:46] = 255  # a speck: not the largest component
        crop = (crop // 12).astype(np.uint8)
        both = mask_series == crop_series
        write(mask_subject, roi_study, mask_series, f"{1 if both else 1}-{200 + number}.jpg", mask, "ROI mask images")
        write(mask_subject, roi_study, crop_series, f"{2 if both else 1}-{300 + number}.jpg", crop, "cropped images")
    pd.DataFrame(info).to_csv(root / "csv" / "dicom_info.csv", index=False)
    meta = (
        pd.DataFrame(info)
        .groupby("SeriesInstanceUID", as_index=False)
        .agg(
            StudyInstanceUID=("StudyInstanceUID", "first"),
            SeriesDescription=("SeriesDescription", "first"),
            **{"Number of Images": ("image_path", "count")},
        )
    )
    meta.to_csv(root / "csv" / "meta.csv", index=False)
    return root
