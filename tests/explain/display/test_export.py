"""Overlay exports: a DICOM Secondary Capture read back with pydicom, without patient identity, and
referencing the source study only when asked."""

import io

import numpy as np
import pydicom
import pytest

from hct.data import builtin_samples
from hct.errors import ConfigError
from hct.explain.display.export import IDENTITY_KEYWORDS, SECONDARY_CAPTURE, secondary_capture, source_uids

PICTURE = np.random.default_rng(0).integers(0, 256, (60, 40, 3), dtype=np.uint8)


@pytest.fixture(scope="module")
def source():
    path = builtin_samples()[0].path
    return path, pydicom.dcmread(path, stop_before_pixels=True)


def _identity(ds) -> list[str]:
    """Identity tags holding a value (DICOM's type 2 patient attributes are present, empty)."""
    return [key for key in IDENTITY_KEYWORDS if ds.get(key)] + [
        str(e.tag) for e in ds if e.tag.group == 0x0010 and e.value
    ]


def test_the_capture_opens_as_rgb_and_carries_no_patient_identity(source):
    path, original = source
    assert original.PatientID  # the source does identify its patient
    data = secondary_capture(PICTURE, "gradcam of hct_performer_relu", laterality="L", pixel_spacing=(0.1, 0.1))
    ds = pydicom.dcmread(io.BytesIO(data))
    assert ds.file_meta.MediaStorageSOPClassUID == ds.SOPClassUID == SECONDARY_CAPTURE
    np.testing.assert_array_equal(ds.pixel_array, PICTURE)
    assert ds.PhotometricInterpretation == "RGB" and ds.Modality == "OT" and ds.Laterality == "L"
    assert _identity(ds) == []
    # not asked: nothing of the source study
    assert ds.StudyInstanceUID != original.StudyInstanceUID and "SourceImageSequence" not in ds
    for uid in (original.StudyInstanceUID, original.SeriesInstanceUID, original.SOPInstanceUID):
        assert uid.encode() not in data


def test_the_source_study_is_referenced_only_when_asked(source):
    path, original = source
    ds = pydicom.dcmread(io.BytesIO(secondary_capture(PICTURE, "saliency", reference=source_uids(path))))
    assert ds.StudyInstanceUID == original.StudyInstanceUID
    assert ds.SeriesInstanceUID != original.SeriesInstanceUID and ds.SOPInstanceUID != original.SOPInstanceUID
    assert ds.SourceImageSequence[0].ReferencedSOPInstanceUID == original.SOPInstanceUID
    assert _identity(ds) == []
    patient = str(original.PatientID).encode()
    assert patient not in secondary_capture(PICTURE, "saliency", reference=source_uids(path))


def test_a_picture_that_is_not_rgb_is_refused():
    with pytest.raises(ConfigError, match="uint8"):
        secondary_capture(PICTURE[..., 0], "x")
