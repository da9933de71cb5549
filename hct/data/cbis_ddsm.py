"""CBIS-DDSM adapter: the case description CSVs (mass_/calc_case_description_*.csv) -> records.

An image is malignant when any of its abnormalities has pathology MALIGNANT. A malignant image
lists the types of its malignant abnormalities; a non-malignant image lists all of its own.
CBIS-DDSM outlines findings with ROI masks, not boxes: records carry no boxes.
"""

from __future__ import annotations

import csv
from pathlib import Path

from hct.data.manifest import make_record
from hct.data.records import ImageRecord
from hct.errors import ConfigError

REQUIRED = ("patient_id", "left or right breast", "image view", "abnormality type", "pathology", "image file path")


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


def read_cbis_ddsm(csv_paths: list[str | Path], image_root: str | Path) -> list[ImageRecord]:
    """Records of the images in CBIS-DDSM case description CSVs; image paths relative to ``image_root``."""
    images: dict[str, dict] = {}
    for csv_path in csv_paths:
        with open(csv_path, newline="") as handle:
            reader = csv.DictReader(handle)
            missing = set(REQUIRED) - {name.strip() for name in reader.fieldnames or ()}
            if missing:
                raise ConfigError(f"{csv_path} lacks CBIS-DDSM column(s) {sorted(missing)}; "
                                  "pass a mass_ or calc_case_description CSV.")
            for raw in reader:
                row = {key.strip(): (value or "").strip() for key, value in raw.items()}
                file_path = row["image file path"]
                image = images.setdefault(file_path, {"row": row, "malignant": [], "other": []})
                group = "malignant" if row["pathology"].upper() == "MALIGNANT" else "other"
                image[group].extend(finding_types_of(row))
    records = []
    for file_path, image in images.items():
        row = image["row"]
        label = int(bool(image["malignant"]))
        types = image["malignant"] if label else image["other"]
        records.append(make_record(
            image_id=file_path.split("/")[0], path=str(Path(image_root) / file_path),
            patient_id=row["patient_id"], exam_id=row["patient_id"],
            laterality=row["left or right breast"][:1].upper(), view=row["image view"].upper(),
            label=label, finding_types=tuple(dict.fromkeys(types)),
        ))
    return records
