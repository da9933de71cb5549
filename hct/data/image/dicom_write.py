"""Writing DICOM files: source mammograms (the phantom's, :mod:`hct.data.phantom.generate`, and the tests' synthetic
files), which highdicom does not write, and :func:`write_dataset` for any dataset.

The derived objects (Secondary Capture, Parametric Map, Structured Report) are written with highdicom
(:mod:`hct.explain.display.export`, :mod:`hct.explain.display.dicom_results`).
"""

from __future__ import annotations

import io
import os
from typing import TYPE_CHECKING

import numpy as np

from hct.io import atomic_write

if TYPE_CHECKING:  # pydicom is imported only when writing
    from pydicom.dataset import Dataset

MAMMOGRAPHY = "1.2.840.10008.5.1.4.1.1.1.2"  # Digital Mammography X-Ray Image Storage - For Presentation


def new_dataset(sop_class: str, sop_instance: str | None = None) -> Dataset:
    """An empty dataset of ``sop_class`` with its file meta (explicit VR little endian) and SOP instance
    UID (a new one unless given)."""
    from pydicom.dataset import Dataset, FileMetaDataset
    from pydicom.uid import ExplicitVRLittleEndian, generate_uid

    ds = Dataset()
    ds.file_meta = FileMetaDataset()
    ds.file_meta.MediaStorageSOPClassUID = ds.SOPClassUID = sop_class
    ds.file_meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID = sop_instance or generate_uid()
    ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
    return ds


def mammogram_dataset(
    pixels: np.ndarray, *, bits_stored: int | None = None, sop_instance: str | None = None, **tags
) -> Dataset:
    """A digital mammogram (Modality MG, MONOCHROME2) of unsigned ``pixels`` (uint8 or uint16, stored at
    ``bits_stored`` bits, default all), with ``tags`` set on it (``ImageLaterality="L"``, ...)."""
    pixels = np.ascontiguousarray(pixels)
    if pixels.dtype not in (np.uint8, np.uint16) or pixels.ndim != 2:
        raise ValueError(f"a mammogram is a 2-D uint8 or uint16 array, got {pixels.dtype} {pixels.shape}")
    ds = new_dataset(MAMMOGRAPHY, sop_instance)
    ds.Modality = "MG"
    ds.SamplesPerPixel = 1
    ds.PhotometricInterpretation = "MONOCHROME2"
    ds.Rows, ds.Columns = pixels.shape
    ds.BitsAllocated = pixels.dtype.itemsize * 8
    ds.BitsStored = bits_stored or ds.BitsAllocated
    ds.HighBit = ds.BitsStored - 1
    ds.PixelRepresentation = 0
    for key, value in tags.items():
        setattr(ds, key, value)
    ds.PixelData = pixels.tobytes()
    return ds


def write_dataset(ds: Dataset, path: str | os.PathLike | None = None) -> bytes | None:
    """Write ``ds`` as a DICOM file (preamble and file meta) to ``path``, or return its bytes."""
    if path is not None:
        atomic_write(path, lambda tmp: ds.save_as(tmp, enforce_file_format=True))
        return None
    out = io.BytesIO()
    ds.save_as(out, enforce_file_format=True)
    return out.getvalue()
