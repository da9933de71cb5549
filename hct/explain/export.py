"""An overlay picture saved for others: PNG, or a DICOM Secondary Capture a DICOM viewer opens.

The Secondary Capture never carries a patient identity tag (name, ID, birth date, sex, accession
number, ...): nothing of the source file's patient or visit is copied. It joins the source's study
(its Study Instance UID, and the source image referenced) only when asked, for use inside the
hospital's PACS; otherwise it starts a study of its own.
"""

from __future__ import annotations

import io
import time
from pathlib import Path

import numpy as np

from hct.data.dicom_write import SECONDARY_CAPTURE, new_dataset, write_dataset
from hct.errors import ConfigError, MammogramError

# What the export must never hold: patient identity (module "Patient") and the visit's accession number.
IDENTITY_KEYWORDS = ("PatientName", "PatientID", "PatientBirthDate", "PatientSex", "OtherPatientIDsSequence",
                     "AccessionNumber", "IssuerOfPatientID", "PatientAddress", "ReferringPhysicianName")
SOURCE_UID_KEYWORDS = ("StudyInstanceUID", "SeriesInstanceUID", "SOPClassUID", "SOPInstanceUID")


def source_uids(source: str | Path | bytes) -> dict[str, str]:
    """The study, series and image UIDs of a source DICOM (path or bytes); nothing else is read."""
    import pydicom

    try:
        ds = pydicom.dcmread(io.BytesIO(source) if isinstance(source, bytes) else str(source),
                             stop_before_pixels=True, force=True, specific_tags=list(SOURCE_UID_KEYWORDS))
    except Exception as err:
        raise MammogramError(f"the source image is not a readable DICOM file ({err}); export without referencing it") from err
    uids = {key: str(ds.get(key, "") or "") for key in SOURCE_UID_KEYWORDS}
    if not uids["StudyInstanceUID"]:
        raise MammogramError("the source image has no Study Instance UID; export without referencing it")
    return uids


def secondary_capture(rgb: np.ndarray, description: str, reference: dict[str, str] | None = None,
                      pixel_spacing: tuple[float, float] | None = None, laterality: str = "") -> bytes:
    """A DICOM Secondary Capture (RGB, 8 bits) of a ``uint8`` ``(H, W, 3)`` picture.

    ``description`` becomes the series description and derivation (say what the overlay shows,
    never who it shows). ``reference``: the source's UIDs (:func:`source_uids`) to file the capture
    in the source's study and reference the source image; ``None`` (default) references nothing.
    """
    from pydicom.dataset import Dataset
    from pydicom.uid import generate_uid

    rgb = np.ascontiguousarray(rgb)
    if rgb.dtype != np.uint8 or rgb.ndim != 3 or rgb.shape[2] != 3:
        raise ConfigError(f"a Secondary Capture takes a uint8 (H, W, 3) picture, got {rgb.dtype} {rgb.shape}")
    now = time.strftime("%Y%m%d"), time.strftime("%H%M%S")
    ds = new_dataset(SECONDARY_CAPTURE)
    ds.SpecificCharacterSet = "ISO_IR 192"
    ds.StudyInstanceUID = reference["StudyInstanceUID"] if reference else generate_uid()
    ds.SeriesInstanceUID = generate_uid()
    ds.StudyDate = ds.SeriesDate = ds.ContentDate = now[0]
    ds.StudyTime = ds.SeriesTime = ds.ContentTime = now[1]
    ds.StudyID, ds.SeriesNumber, ds.InstanceNumber = "", 1, 1
    ds.Modality, ds.ConversionType, ds.Laterality = "OT", "WSD", laterality
    ds.SeriesDescription = ds.DerivationDescription = description[:64]
    ds.ImageType, ds.BurnedInAnnotation = ["DERIVED", "SECONDARY"], "NO"
    ds.Manufacturer, ds.SoftwareVersions = "HCT Explorer", "hct"
    if pixel_spacing:
        ds.NominalScannedPixelSpacing = [f"{pixel_spacing[0]:.6g}", f"{pixel_spacing[1]:.6g}"]
    if reference:
        item = Dataset()
        item.ReferencedSOPClassUID, item.ReferencedSOPInstanceUID = reference["SOPClassUID"], reference["SOPInstanceUID"]
        ds.SourceImageSequence = [item]
    ds.Rows, ds.Columns = rgb.shape[:2]
    ds.SamplesPerPixel, ds.PhotometricInterpretation, ds.PlanarConfiguration = 3, "RGB", 0
    ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 8, 8, 7, 0
    ds.PixelData = rgb.tobytes()
    return write_dataset(ds)
