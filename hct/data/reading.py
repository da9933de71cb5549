"""Reading mammograms (DICOM, PNG, TIFF) into display-ready grey pixels and safe metadata.

Laterality convention (checked on the eight CBIS-DDSM samples, whose tags carry it): in the
standard display a LEFT breast lies with its chest wall on the image's left side and a RIGHT
breast with its chest wall on the image's right side (the two views hang back to back).
"""

from __future__ import annotations

import io
import re
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO, Union

import numpy as np

from hct.data.breast import infer_laterality
from hct.data.memory import held, is_held
from hct.errors import MammogramError

MAX_PIXELS = 100_000_000  # images beyond this many pixels are refused
ImageSource = Union[str, Path, bytes, bytearray, BinaryIO]

_CBIS_NAME = re.compile(r"(LEFT|RIGHT)_(CC|MLO)", re.IGNORECASE)
_VIEW_ALIASES = {"CC": "CC", "MLO": "MLO", "XCCL": "CC", "XCCM": "CC", "FB": "CC", "SIO": "MLO"}


@dataclass(frozen=True)
class MammogramMeta:
    """Metadata that is safe to display: never a patient's name, id or birth date."""

    laterality: str  # 'L', 'R'
    view: str  # 'CC', 'MLO' or '' when unknown
    photometric: str  # MONOCHROME1 / MONOCHROME2 / the PNG or TIFF mode
    pixel_spacing: tuple[float, float] | None  # (row, col) mm
    manufacturer: str
    bit_depth: int
    source: str  # the path, or '<bytes>'
    rows: int
    cols: int
    laterality_from: str  # 'tags' or 'image' (inferred from which side the breast lies on)
    view_from: str  # 'tags' or '' (view cannot be inferred)
    file_format: str  # 'DICOM', 'PNG', 'TIFF', ...
    modality: str = ""  # the DICOM Modality ('MG' for a mammogram); '' for pictures
    warning: str = ""  # what the reader should know before trusting a model on it ('' when nothing)


@dataclass(frozen=True)
class Mammogram:
    """A mammogram in display orientation: float32 pixels, higher = brighter (denser tissue)."""

    pixels: np.ndarray
    meta: MammogramMeta


def read_mammogram(source: ImageSource) -> Mammogram:
    """Read a DICOM, PNG or TIFF mammogram from a path, bytes or a binary file-like object.

    Raises :class:`MammogramError` with the reason for any input that is not a readable grey image.
    """
    data, name = _read_bytes(source)
    if not data:
        raise MammogramError(f"{name} is empty (0 bytes); choose a DICOM, PNG or TIFF mammogram.")
    if len(data) > 132 and data[128:132] == b"DICM":
        pixels, tags = _read_dicom(data, name)
    elif (start := _headerless_dicom_start(data)) is not None:
        pixels, tags = _read_dicom(data[start:], name)
    else:
        pixels, tags = _read_picture(data, name)
    rows, cols = pixels.shape
    laterality, view = tags.pop("laterality"), tags.pop("view")
    laterality_from = "tags" if laterality else "image"
    if not laterality:
        laterality = infer_laterality(pixels)
    return Mammogram(
        pixels=pixels,
        meta=MammogramMeta(
            laterality=laterality, view=view, rows=rows, cols=cols, source=name,
            laterality_from=laterality_from, view_from="tags" if view else "", **tags,
        ),
    )


def read_dicom_tags(path: str | Path) -> dict:
    """Laterality, view and safe descriptive tags of a DICOM file without decoding its pixels."""
    import pydicom

    try:
        ds = pydicom.dcmread(str(path), stop_before_pixels=True)
    except Exception as err:  # pydicom raises many kinds for corrupt files
        raise MammogramError(f"{path} is not a readable DICOM file ({err}).") from err
    return _dicom_tags(ds)


def _read_bytes(source: ImageSource) -> tuple[bytes, str]:
    if is_held(source):  # retrieved from the PACS, never written to disk
        try:
            return held(source), source
        except KeyError:
            raise MammogramError(f"{source} is no longer in memory; retrieve it from the PACS again.") from None
    if isinstance(source, (str, Path)):
        path = Path(source)
        if not path.is_file():
            raise MammogramError(f"{path} does not exist or is not a file; check the path.")
        return path.read_bytes(), str(path)
    if isinstance(source, (bytes, bytearray, memoryview)):
        return bytes(source), "<bytes>"
    if hasattr(source, "read"):
        if hasattr(source, "seek"):
            source.seek(0)
        data = source.read()
        if not isinstance(data, (bytes, bytearray)):
            raise MammogramError("The file object returned text; open the mammogram in binary mode.")
        return bytes(data), str(getattr(source, "name", "<bytes>"))
    raise MammogramError(f"Cannot read a mammogram from a {type(source).__name__}; pass a path, bytes or a file.")


def _headerless_dicom_start(data: bytes) -> int | None:
    """Where a DICOM data set written without the 128-byte preamble and file meta starts, or None.

    Such a data set opens with a group 0002 or 0008 element, little or big endian; pydicom's
    ``no_meta.dcm`` has one stray byte before it, so the second byte is tried too.
    """
    for start in (0, 1):
        if data[start:start + 2] in (b"\x02\x00", b"\x08\x00", b"\x00\x02", b"\x00\x08"):
            return start
    return None


def _check_size(rows: int, cols: int, name: str) -> None:
    if rows * cols > MAX_PIXELS:
        raise MammogramError(
            f"{name} is too large: {rows}x{cols} = {rows * cols / 1e6:.0f} megapixels, beyond the "
            f"{MAX_PIXELS / 1e6:.0f} megapixel limit; downsample it first."
        )
    if rows < 16 or cols < 16:
        raise MammogramError(f"{name} is only {rows}x{cols} pixels; that is not a mammogram.")


def _read_dicom(data: bytes, name: str) -> tuple[np.ndarray, dict]:
    import pydicom
    from pydicom.pixels import apply_modality_lut, apply_voi_lut

    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            ds = pydicom.dcmread(io.BytesIO(data), force=True)
    except Exception as err:
        raise MammogramError(f"{name} is a corrupt or truncated DICOM file ({err}); export it again.") from err
    ended_early = [w for w in caught if "End of file" in str(w.message) or "truncated" in str(w.message).lower()]
    if ended_early:
        raise MammogramError(f"{name} is a truncated DICOM file ({ended_early[0].message}); copy it again in full.")
    if "PixelData" not in ds:
        kind = str(ds.get("Modality", "") or "unknown modality")
        raise MammogramError(f"{name} is a DICOM file ({kind}) without pixel data (a report or structured data?).")
    syntax = ds.file_meta.get("TransferSyntaxUID") or _syntax_of_encoding(ds)
    if syntax is None or not syntax.is_transfer_syntax:
        raise MammogramError(
            f"{name} uses an unsupported transfer syntax ({syntax or 'none'}); convert it to "
            "explicit VR little endian, JPEG, JPEG 2000 or RLE."
        )
    try:
        rows, cols = int(ds.Rows), int(ds.Columns)
        samples = int(ds.get("SamplesPerPixel", 1))
        frames = int(ds.get("NumberOfFrames", 1) or 1)
        bits = int(ds.BitsStored)
    except Exception as err:
        raise MammogramError(f"{name} lacks a valid Rows/Columns/BitsStored ({err}).") from err
    _check_size(rows, cols, name)
    photometric = str(ds.get("PhotometricInterpretation", "MONOCHROME2"))
    if samples != 1 or not photometric.startswith("MONOCHROME"):
        raise MammogramError(f"{name} is a colour image ({photometric}); a mammogram must be greyscale.")
    if frames != 1:
        raise MammogramError(f"{name} holds {frames} frames (tomosynthesis?); export one 2-D view.")
    _check_pixel_data_length(ds, syntax, rows, cols, name)
    try:
        stored = ds.pixel_array
    except Exception as err:
        raise MammogramError(
            f"{name}: its pixel data could not be decoded ({type(err).__name__}: {err}); "
            f"the file may be truncated or its compression ({syntax.name}) unsupported."
        ) from err
    pixels = apply_modality_lut(stored, ds)
    if "WindowCenter" in ds or "VOILUTSequence" in ds:
        pixels = apply_voi_lut(pixels, ds)
    pixels = np.asarray(pixels, dtype=np.float32)
    if photometric == "MONOCHROME1":
        pixels = pixels.max() + pixels.min() - pixels
    if pixels.shape != (rows, cols):
        raise MammogramError(f"{name}: decoded pixels are {pixels.shape}, not {rows}x{cols}.")
    tags = _dicom_tags(ds)
    modality = str(ds.get("Modality", "") or "")
    tags.update(photometric=photometric, bit_depth=bits, file_format="DICOM", modality=modality,
                warning=modality_warning(modality))
    return np.ascontiguousarray(pixels), tags


def modality_warning(modality: str) -> str:
    """A warning when a DICOM's Modality is not MG (mammography), else ''."""
    if modality in ("MG", ""):
        return ""
    return (f"Modality is {modality}, not MG (mammography): the models were trained on mammograms, "
            "so their output on this image means little.")


def _syntax_of_encoding(ds):
    """The transfer syntax a data set without file meta was read in (pydicom sniffs the encoding)."""
    from pydicom.uid import ExplicitVRBigEndian, ExplicitVRLittleEndian, ImplicitVRLittleEndian

    implicit, little = getattr(ds, "original_encoding", (None, None))
    if implicit is None:
        return None
    syntax = ImplicitVRLittleEndian if implicit else ExplicitVRLittleEndian if little else ExplicitVRBigEndian
    ds.file_meta.TransferSyntaxUID = syntax  # so that pydicom can decode the pixels
    return syntax


def _check_pixel_data_length(ds, syntax, rows: int, cols: int, name: str) -> None:
    """A clear error when an uncompressed DICOM holds fewer pixel bytes than its header claims."""
    if syntax.is_compressed:
        return
    bits = int(ds.get("BitsAllocated", 16) or 16)
    expected = rows * cols * bits // 8
    held = len(ds.PixelData)
    if held < expected:
        raise MammogramError(
            f"{name}'s header claims {rows}x{cols} pixels of {bits} bits ({expected:,} bytes) but the file holds "
            f"{held:,} bytes of pixel data: it is truncated or its header is wrong; export it again."
        )


def _dicom_tags(ds) -> dict:
    laterality = ""
    for key in ("ImageLaterality", "Laterality"):
        value = str(ds.get(key, "") or "").upper()
        if value in ("L", "R"):
            laterality = value
            break
    view = _VIEW_ALIASES.get(str(ds.get("ViewPosition", "") or "").upper(), "")
    for key in ("SeriesDescription", "PatientID", "PatientName"):
        match = _CBIS_NAME.search(str(ds.get(key, "") or ""))
        if match:
            laterality = laterality or match.group(1)[0].upper()
            view = view or match.group(2).upper()
            break
    spacing = ds.get("PixelSpacing") or ds.get("ImagerPixelSpacing")
    return dict(
        laterality=laterality,
        view=view,
        pixel_spacing=(float(spacing[0]), float(spacing[1])) if spacing else None,
        manufacturer=str(ds.get("Manufacturer", "") or ""),
    )


def _read_picture(data: bytes, name: str) -> tuple[np.ndarray, dict]:
    if data[:4] in (b"II*\x00", b"MM\x00*", b"II+\x00", b"MM\x00+"):
        return _read_tiff(data, name)
    from PIL import Image, UnidentifiedImageError

    Image.MAX_IMAGE_PIXELS = MAX_PIXELS
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)  # _check_size says it better
            image = Image.open(io.BytesIO(data))
        with image:
            _check_size(image.height, image.width, name)
            mode, fmt = image.mode, image.format or "image"
            if mode in ("RGB", "RGBA", "P", "CMYK", "YCbCr", "LAB", "HSV", "LA", "PA"):
                raise MammogramError(f"{name} is a colour {fmt} ({mode}); save the mammogram as greyscale.")
            pixels = np.asarray(image)
    except MammogramError:
        raise
    except Image.DecompressionBombError as err:
        claimed = re.search(r"\((\d+) pixels\)", str(err))
        size = f"{int(claimed.group(1)) / 1e6:.0f} megapixels, " if claimed else ""
        raise MammogramError(f"{name} is too large: {size}beyond the {MAX_PIXELS / 1e6:.0f} megapixel limit; "
                             "downsample it first.") from err
    except UnidentifiedImageError as err:
        raise MammogramError(f"{name} is neither a DICOM file nor a PNG or TIFF picture; use DICOM, PNG or TIFF.") from err
    except Exception as err:
        raise MammogramError(f"{name} is a corrupt image ({err}).") from err
    if pixels.ndim != 2:
        raise MammogramError(f"{name} has shape {pixels.shape}; a mammogram must be a single grey plane.")
    bits = 1 if pixels.dtype == bool else pixels.dtype.itemsize * 8
    return pixels.astype(np.float32), _picture_tags(mode, bits, fmt)


def _read_tiff(data: bytes, name: str) -> tuple[np.ndarray, dict]:
    import tifffile

    try:
        with tifffile.TiffFile(io.BytesIO(data)) as tif:
            page = tif.pages[0]
            shape = page.shape
            if len(shape) == 3 and shape[-1] in (3, 4) or page.photometric in (2, 3, 5, 6):
                raise MammogramError(f"{name} is a colour TIFF; save the mammogram as greyscale.")
            if len(shape) != 2:
                raise MammogramError(f"{name} has shape {shape}; a mammogram must be a single grey plane.")
            _check_size(shape[0], shape[1], name)
            pixels = page.asarray()
            inverted = page.photometric == 0  # MINISWHITE
    except MammogramError:
        raise
    except Exception as err:
        raise MammogramError(f"{name} is a corrupt TIFF ({err}).") from err
    bits = pixels.dtype.itemsize * 8
    pixels = pixels.astype(np.float32)
    if inverted:
        pixels = pixels.max() + pixels.min() - pixels
    return pixels, _picture_tags("MINISWHITE" if inverted else "MINISBLACK", bits, "TIFF")


def _picture_tags(mode: str, bits: int, fmt: str) -> dict:
    return dict(laterality="", view="", pixel_spacing=None, manufacturer="", photometric=mode,
                bit_depth=bits, file_format=fmt, modality="", warning="")
