"""An overlay picture saved for others: PNG, or a DICOM Secondary Capture a DICOM viewer opens, written
with highdicom.

A capture saved as a file (:func:`secondary_capture`) never carries a patient identity tag (name,
ID, birth date, sex, accession number, ...): nothing of the source file's patient or visit is
copied. It joins the source's study (its Study Instance UID, and the source image referenced) only
when asked; otherwise it starts a study of its own. A capture stored into the hospital's PACS
(:func:`capture_dataset` with the source's header) files with the source's patient and study, as
every object of a study must (:mod:`hct.explain.display.dicom_results`).
"""

from __future__ import annotations

import io
import time
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from hct.data.image.dicom_write import write_dataset
from hct.errors import ConfigError, MammogramError

if TYPE_CHECKING:
    from pydicom.dataset import Dataset

SECONDARY_CAPTURE = "1.2.840.10008.5.1.4.1.1.7"
MANUFACTURER = "HCT Explorer"
# What a file export must never hold: patient identity (module "Patient") and the visit's accession number.
IDENTITY_KEYWORDS = (
    "PatientName",
    "PatientID",
    "PatientBirthDate",
    "PatientSex",
    "OtherPatientIDsSequence",
    "AccessionNumber",
    "IssuerOfPatientID",
    "PatientAddress",
    "ReferringPhysicianName",
)
SOURCE_UID_KEYWORDS = ("StudyInstanceUID", "SeriesInstanceUID", "SOPClassUID", "SOPInstanceUID")
PATIENT_STUDY_KEYWORDS = (
    "PatientID",
    "PatientName",
    "PatientBirthDate",
    "PatientSex",
    "AccessionNumber",
    "StudyID",
    "StudyDate",
    "StudyTime",
    "ReferringPhysicianName",
)
# PatientOrientation of a mammogram in the standard display (left breast: chest wall on the image's left),
# one letter a direction as highdicom takes it (an MLO's "FR"/"FL" is written "F").
MAMMO_ORIENTATION = {
    ("L", "CC"): ("A", "R"),
    ("R", "CC"): ("P", "L"),
    ("L", "MLO"): ("A", "F"),
    ("R", "MLO"): ("P", "F"),
}


def source_uids(source: str | Path | bytes) -> dict[str, str]:
    """The study, series and image UIDs of a source DICOM (path or bytes); nothing else is read."""
    import pydicom

    try:
        ds = pydicom.dcmread(
            io.BytesIO(source) if isinstance(source, bytes) else str(source),
            stop_before_pixels=True,
            force=True,
            specific_tags=list(SOURCE_UID_KEYWORDS),
        )
    except Exception as err:
        raise MammogramError(
            f"the source image is not a readable DICOM file ({err}); export without referencing it"
        ) from err
    uids = {key: str(ds.get(key, "") or "") for key in SOURCE_UID_KEYWORDS}
    if not uids["StudyInstanceUID"]:
        raise MammogramError("the source image has no Study Instance UID; export without referencing it")
    return uids


def patient_orientation(laterality: str, view: str, source: Dataset | None = None) -> tuple[str, str]:
    """The source's PatientOrientation when it is a valid one, else the standard one of a mammogram of
    ``laterality`` and ``view`` (a view that is not known is taken as CC)."""
    given = [str(v) for v in (source.get("PatientOrientation", []) or [])] if source is not None else []
    if len(given) == 2 and all(v and v[0] in "APRLHF" for v in given):
        return given[0][0], given[1][0]
    return MAMMO_ORIENTATION[(laterality if laterality in ("L", "R") else "L", view if view == "MLO" else "CC")]


def patient_and_study(source: Dataset) -> dict:
    """highdicom's keywords for the source's patient and study (what a derived object in its study repeats)."""
    names = (
        "patient_id",
        "patient_name",
        "patient_birth_date",
        "patient_sex",
        "accession_number",
        "study_id",
        "study_date",
        "study_time",
        "referring_physician_name",
    )
    return {name: (str(source.get(key, "") or "") or None) for name, key in zip(names, PATIENT_STUDY_KEYWORDS)}


def capture_dataset(
    rgb: np.ndarray,
    description: str,
    *,
    study_uid: str,
    series_uid: str,
    series_number: int = 1,
    instance_number: int = 1,
    source: Dataset | None = None,
    references: dict[str, str] | None = None,
    pixel_spacing: tuple[float, float] | None = None,
    laterality: str = "",
    view: str = "",
    model: str = "",
    transfer_syntax: str = "1.2.840.10008.1.2.1",
) -> Dataset:
    """A Secondary Capture (RGB, 8 bits) of a ``uint8`` ``(H, W, 3)`` picture in ``study_uid``.

    ``source`` (the source image's header) gives it the source's patient and study (for the PACS);
    ``references`` (SOP class and instance UIDs) names the source image without any identity;
    ``transfer_syntax`` is explicit VR little endian (uncompressed) unless given.
    """
    import highdicom as hd
    from pydicom.dataset import Dataset
    from pydicom.uid import generate_uid

    rgb = np.ascontiguousarray(rgb)
    if rgb.dtype != np.uint8 or rgb.ndim != 3 or rgb.shape[2] != 3:
        raise ConfigError(f"a Secondary Capture takes a uint8 (H, W, 3) picture, got {rgb.dtype} {rgb.shape}")
    identity = patient_and_study(source) if source is not None else {}
    ds = hd.sc.SCImage(
        pixel_array=rgb,
        photometric_interpretation="RGB",
        bits_allocated=8,
        coordinate_system="PATIENT",
        patient_orientation=patient_orientation(laterality, view, source),
        study_instance_uid=study_uid,
        series_instance_uid=series_uid,
        series_number=series_number,
        sop_instance_uid=generate_uid(),
        instance_number=instance_number,
        manufacturer=MANUFACTURER,
        laterality=laterality or None,
        pixel_spacing=pixel_spacing,
        transfer_syntax_uid=transfer_syntax,
        **identity,
    )
    ds.SpecificCharacterSet = "ISO_IR 192"
    ds.SeriesDescription = ds.DerivationDescription = description[:64]
    ds.ImageType, ds.BurnedInAnnotation = ["DERIVED", "SECONDARY"], "NO"
    ds.SoftwareVersions = software_version()
    ds.ContentDate, ds.ContentTime = time.strftime("%Y%m%d"), time.strftime("%H%M%S")
    if model:
        ds.ManufacturerModelName = model[:64]
    if source is not None:
        references = {"SOPClassUID": source.SOPClassUID, "SOPInstanceUID": source.SOPInstanceUID}
    if references:
        item = Dataset()
        item.ReferencedSOPClassUID = references["SOPClassUID"]
        item.ReferencedSOPInstanceUID = references["SOPInstanceUID"]
        ds.SourceImageSequence = [item]
    return ds


def software_version() -> str:
    """What the written objects name as their software: ``hct <version>``."""
    from hct import __version__

    return f"hct {__version__}"


def secondary_capture(
    rgb: np.ndarray,
    description: str,
    reference: dict[str, str] | None = None,
    pixel_spacing: tuple[float, float] | None = None,
    laterality: str = "",
) -> bytes:
    """A DICOM Secondary Capture file (RGB, 8 bits) of a ``uint8`` ``(H, W, 3)`` picture, without patient identity.

    ``description`` becomes the series description and derivation (say what the overlay shows,
    never who it shows). ``reference``: the source's UIDs (:func:`source_uids`) to file the capture
    in the source's study and reference the source image; ``None`` (default) references nothing.
    """
    from pydicom.uid import generate_uid

    ds = capture_dataset(
        rgb,
        description,
        study_uid=reference["StudyInstanceUID"] if reference else generate_uid(),
        series_uid=generate_uid(),
        references=reference,
        pixel_spacing=pixel_spacing,
        laterality=laterality,
    )
    return write_dataset(ds)
