"""VinDr-Mammo adapter: finding_annotations.csv -> records.

The PhysioNet release holds ``finding_annotations.csv``, ``breast-level_annotations.csv`` and
``images/<study_id>/<image_id>.dicom``; its de-identified headers carry the ``image_id`` as
SOPInstanceUID. Files are matched by that UID (or, failing it, by the file name), so ``image_root``
may be the release folder, its ``images`` folder or any folder above them.

Label rule: an image is malignant when its breast BI-RADS or any of its findings' BI-RADS is in
``malignant_birads`` (default BI-RADS 5; pass (4, 5) to count suspicious findings too), else
non-malignant. VinDr-Mammo has no biopsy results, so BI-RADS is the only available proxy. A
malignant image keeps the findings whose BI-RADS qualifies; a non-malignant image keeps all.
Findings of other categories (e.g. 'Skin Thickening', 'Global Asymmetry') carry no type and are
left out with their boxes. VinDr-Mammo has one study per patient: the study id is the patient id.
"""

from __future__ import annotations

import ast
import math
from pathlib import Path

from hct.data.records import ImageRecord
from hct.data.sets.dicom_index import Progress, index_dicoms
from hct.data.sets.manifest import make_record
from hct.data.sets.report import DataReport
from hct.data.sets.tables import read_table
from hct.errors import ConfigError

CATEGORY_TYPES = {
    "mass": "mass",
    "suspicious calcification": "calcifications",
    "architectural distortion": "architectural_distortion",
    "focal asymmetry": "focal_asymmetry",
}
SPLIT_NAMES = {"training": "train", "test": "test"}
REQUIRED = (
    "study_id",
    "image_id",
    "laterality",
    "view_position",
    "breast_birads",
    "finding_categories",
    "finding_birads",
    "xmin",
    "ymin",
    "xmax",
    "ymax",
    "split",
)


def _birads(text: str) -> int | None:
    digits = "".join(ch for ch in text or "" if ch.isdigit())
    return int(digits) if digits else None


def read_findings(csv_path: str | Path, malignant_birads: tuple[int, ...] = (5,)) -> dict[str, dict]:
    """Per image id of ``finding_annotations.csv``: its first ``row``, whether it is ``malignant``
    and its ``findings`` (types, box (row0, col0, row1, col1), whether its BI-RADS qualifies)."""
    images: dict[str, dict] = {}
    for row in read_table(csv_path, REQUIRED, "VinDr-Mammo table", "pass finding_annotations.csv."):
        image = images.setdefault(row["image_id"], {"row": row, "findings": [], "malignant": False})
        finding_birads = _birads(row["finding_birads"])
        image["malignant"] |= _birads(row["breast_birads"]) in malignant_birads
        image["malignant"] |= finding_birads in malignant_birads
        try:
            categories = ast.literal_eval(row["finding_categories"] or "[]")
            coords = [float(row[k]) if row[k] else math.nan for k in ("ymin", "xmin", "ymax", "xmax")]
        except (ValueError, SyntaxError) as err:
            raise ConfigError(f"{csv_path}: image {row['image_id']} has a malformed finding ({err}).") from err
        types = [CATEGORY_TYPES[c.lower()] for c in categories if c.lower() in CATEGORY_TYPES]
        box = (
            None
            if any(math.isnan(v) for v in coords)
            else (math.floor(coords[0]), math.floor(coords[1]), math.ceil(coords[2]), math.ceil(coords[3]))
        )
        if types:
            image["findings"].append((types, box, finding_birads in malignant_birads))
    return images


def scan_vindr_mammo(
    csv_path: str | Path,
    image_root: str | Path,
    malignant_birads: tuple[int, ...] = (5,),
    cache_dir: str | Path | None = None,
    workers: int | None = None,
    progress: Progress | None = None,
) -> DataReport:
    """The records of ``finding_annotations.csv``'s images found under ``image_root``, and what is
    missing or unreadable."""
    images = read_findings(csv_path, malignant_birads)
    index = index_dicoms(image_root, cache_dir, workers, progress)
    files = {key: file for file in index.table.to_dict("records") for key in (Path(file["path"]).stem, file["sop_uid"])}
    records, missing, unreadable = [], [], []
    for image_id, image in images.items():
        file = files.get(image_id)
        if file is None:
            missing.append(image_id)
        elif file["error"]:
            unreadable.append(f"{image_id}: {file['error']}")
        else:
            records.append(_record(image_id, image, index.path_of(file["path"])))
    return DataReport(
        "vindr",
        str(image_root),
        tuple(records),
        len(images),
        missing=tuple(missing),
        unreadable=tuple(unreadable),
        files_indexed=len(index.table),
        files_read=index.read,
        index_seconds=index.seconds,
    )


def _record(image_id: str, image: dict, path: str) -> ImageRecord:
    row, label, findings = image["row"], int(image["malignant"]), image["findings"]
    kept = [f for f in findings if f[2]] if label and any(f[2] for f in findings) else findings
    return make_record(
        image_id=image_id,
        path=path,
        patient_id=row["study_id"],
        exam_id=row["study_id"],
        laterality=row["laterality"],
        view=row["view_position"],
        label=label,
        finding_types=tuple(dict.fromkeys(t for types, _, _ in kept for t in types)),
        finding_boxes=[box for _, box, _ in kept if box and box[2] > box[0] and box[3] > box[1]],
        split=SPLIT_NAMES.get(row["split"], ""),
    )
