"""VinDr-Mammo adapter: finding_annotations.csv -> records (images at ``<root>/<study_id>/<image_id>.dicom``).

Label rule: an image is malignant when its breast BI-RADS or any of its findings' BI-RADS is in
``malignant_birads`` (default BI-RADS 5; pass (4, 5) to count suspicious findings too), else
non-malignant. VinDr-Mammo has no biopsy results, so BI-RADS is the only available proxy. A
malignant image keeps the findings whose BI-RADS qualifies; a non-malignant image keeps all.
VinDr-Mammo has one study per patient: the study id is the patient id.
"""

from __future__ import annotations

import ast
import csv
import math
from pathlib import Path

from hct.data.manifest import make_record
from hct.data.records import ImageRecord
from hct.errors import ConfigError

CATEGORY_TYPES = {
    "mass": "mass",
    "suspicious calcification": "calcifications",
    "architectural distortion": "architectural_distortion",
    "focal asymmetry": "focal_asymmetry",
}
SPLIT_NAMES = {"training": "train", "test": "test"}
REQUIRED = ("study_id", "image_id", "laterality", "view_position", "breast_birads", "finding_categories",
            "finding_birads", "xmin", "ymin", "xmax", "ymax", "split")


def _birads(text: str) -> int | None:
    digits = "".join(ch for ch in text or "" if ch.isdigit())
    return int(digits) if digits else None


def read_vindr_mammo(csv_path: str | Path, image_root: str | Path,
                     malignant_birads: tuple[int, ...] = (5,)) -> list[ImageRecord]:
    """Records of the images in VinDr-Mammo's ``finding_annotations.csv``."""
    images: dict[str, dict] = {}
    with open(csv_path, newline="") as handle:
        reader = csv.DictReader(handle)
        missing = set(REQUIRED) - set(reader.fieldnames or ())
        if missing:
            raise ConfigError(f"{csv_path} lacks VinDr-Mammo column(s) {sorted(missing)}; "
                              "pass finding_annotations.csv.")
        for row in reader:
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
            box = None if any(math.isnan(v) for v in coords) else (
                math.floor(coords[0]), math.floor(coords[1]), math.ceil(coords[2]), math.ceil(coords[3]))
            if types or box:
                image["findings"].append((types, box, finding_birads in malignant_birads))
    records = []
    for image_id, image in images.items():
        row, label = image["row"], int(image["malignant"])
        kept = [f for f in image["findings"] if f[2]] if label and any(f[2] for f in image["findings"]) \
            else image["findings"]
        records.append(make_record(
            image_id=image_id, path=str(Path(image_root) / row["study_id"] / f"{image_id}.dicom"),
            patient_id=row["study_id"], exam_id=row["study_id"], laterality=row["laterality"],
            view=row["view_position"], label=label,
            finding_types=tuple(dict.fromkeys(t for types, _, _ in kept for t in types)),
            finding_boxes=[box for _, box, _ in kept if box and box[2] > box[0] and box[3] > box[1]],
            split=SPLIT_NAMES.get(row["split"], ""),
        ))
    return records
