"""Reading mammograms (DICOM, PNG, TIFF) into display-ready grey pixels and safe metadata.

Laterality convention (checked on the eight CBIS-DDSM samples, whose tags carry it): in the
standard display a LEFT breast lies with its chest wall on the image's left side and a RIGHT
breast with its chest wall on the image's right side (the two views hang back to back).
"""

from __future__ import annotations

import io
import re
import warnings
from dataclasses import dataclass, replace
from pathlib import Path
from typing import BinaryIO, Union

import numpy as np

from hct.data.image.breast import infer_laterality
from hct.data.image.memory import held, is_held
from hct.errors import DicomHeaderError, MammogramError, PathError, PixelValueError
from hct.paths import existing

MAX_PIXELS = 100_000_000  # images beyond this many pixels are refused
ImageSource = Union[str, Path, bytes, bytearray, BinaryIO]

_CBIS_NAME = re.compile(r"(LEFT|RIGHT)_(CC|MLO)", re.IGNORECASE)
# A view in a file name: L-CC, LCC, L_CC, LEFT_CC, RIGHT-MLO, r_mlo... (not inside a longer word).
NAME_VIEW = re.compile(r"(?<![A-Z])(LEFT|RIGHT|L|R)[-_ ]?(CC|MLO)(?![A-Z])", re.IGNORECASE)
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
    laterality_from: str  # 'tags', 'name' (the file name) or 'image' (which side the breast lies on)
    view_from: str  # 'tags', 'name' or '' (view cannot be inferred)
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

    Laterality and view come from the tags, else from a path's file name (:func:`view_from_name`;
    :func:`with_name` does it for bytes read under a name), else laterality from the image.
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
    named_laterality, named_view = view_from_name(name) if isinstance(source, (str, Path)) else ("", "")
    laterality_from = "tags" if laterality else "name" if named_laterality else "image"
    laterality = laterality or named_laterality or infer_laterality(pixels)
    return Mammogram(
        pixels=pixels,
        meta=MammogramMeta(
            laterality=laterality,
            view=view or named_view,
            rows=rows,
            cols=cols,
            source=name,
            laterality_from=laterality_from,
            view_from="tags" if view else "name" if named_view else "",
            **tags,
        ),
    )


def view_from_name(name: str) -> tuple[str, str]:
    """Laterality (``'L'``/``'R'``) and view (``'CC'``/``'MLO'``) named in a file name such as
    ``0_L-CC.png``, ``LCC.dcm``, ``P_001_LEFT_MLO``; ``('', '')`` when it names none."""
    match = NAME_VIEW.search(Path(name).name)
    return (match[1][0].upper(), match[2].upper()) if match else ("", "")


def with_name(meta: MammogramMeta, name: str) -> MammogramMeta:
    """``meta`` with laterality and view taken from the file ``name`` where the image's tags gave none
    (a DICOM header wins over the name; the name wins over the laterality inferred from the image)."""
    laterality, view = view_from_name(name)
    if laterality and meta.laterality_from == "image":
        meta = replace(meta, laterality=laterality, laterality_from="name")
    if view and not meta.view:
        meta = replace(meta, view=view, view_from="name")
    return meta


def read_dicom_tags(path: str | Path) -> dict:
    """Laterality, view and safe descriptive tags of a DICOM file without decoding its pixels."""
    import pydicom

    try:
        ds = pydicom.dcmread(str(path), stop_before_pixels=True)
    except Exception as err:  # pydicom raises many kinds for corrupt files
        raise MammogramError(f"{path} is not a readable DICOM file ({_cause(err)}).") from err
    tags = _dicom_tags(ds)
    tags.pop("note")
    return tags


def _read_bytes(source: ImageSource) -> tuple[bytes, str]:
    if is_held(source):  # retrieved from the PACS, never written to disk
        try:
            return held(source), source
        except KeyError:
            raise MammogramError(f"{source} is no longer in memory; retrieve it from the PACS again.") from None
    if isinstance(source, (str, Path)):
        path = existing(source, "file", "image", "check the path")
        try:
            return path.read_bytes(), str(path)
        except OSError as err:
            raise PathError(f"the image {path} cannot be read ({err.strerror}); check the path.") from err
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
        if data[start : start + 2] in (b"\x02\x00", b"\x08\x00", b"\x00\x02", b"\x00\x08"):
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
    ds = _parse_dicom(data, name)
    syntax = ds.file_meta.get("TransferSyntaxUID") or _syntax_of_encoding(ds)
    if syntax is None or not syntax.is_transfer_syntax:
        raise MammogramError(
            f"{name} uses an unsupported transfer syntax ({syntax or 'none'}); convert it to "
            "explicit VR little endian, JPEG, JPEG 2000 or RLE."
        )
    rows, cols, bits, photometric = _dicom_geometry(ds, name)
    _check_pixel_data_length(ds, syntax, rows, cols, name)
    try:
        stored = ds.pixel_array
    except Exception as err:
        raise MammogramError(
            f"{name}: its pixel data could not be decoded ({type(err).__name__}: {_cause(err)}); "
            f"the file may be truncated or its compression ({syntax.name}) unsupported."
        ) from err
    notes = [_overflow_note(ds, syntax, bits)]
    pixels = _modality_values(ds, stored, name)
    pixels, note = _windowed(ds, pixels)
    notes.append(note)
    if photometric == "MONOCHROME1":
        pixels = pixels.max() + pixels.min() - pixels
    if pixels.shape != (rows, cols):
        raise MammogramError(f"{name}: decoded pixels are {pixels.shape}, not {rows}x{cols}.")
    tags = _dicom_tags(ds)
    notes.append(tags.pop("note"))
    modality = _text(ds, "Modality")
    notes.insert(0, modality_warning(modality))
    tags.update(
        photometric=photometric,
        bit_depth=bits,
        file_format="DICOM",
        modality=modality,
        warning=" ".join(n for n in notes if n),
    )
    return np.ascontiguousarray(pixels), tags


def _parse_dicom(data: bytes, name: str):
    """The data set of ``data``; :class:`MammogramError` for a file that is corrupt, cut short, or without pixels."""
    import pydicom

    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            ds = pydicom.dcmread(io.BytesIO(data), force=True)
    except Exception as err:
        raise MammogramError(f"{name} is a corrupt or truncated DICOM file ({_cause(err)}); export it again.") from err
    ended_early = [w for w in caught if "End of file" in str(w.message) or "truncated" in str(w.message).lower()]
    if ended_early:
        raise MammogramError(f"{name} is a truncated DICOM file ({ended_early[0].message}); copy it again in full.")
    if "PixelData" not in ds:
        parsed = _parsed_length(ds)
        if parsed != len(data):
            raise MammogramError(
                f"{name} is a DICOM file cut short or damaged inside its header (its elements end "
                f"at byte {parsed:,} of {len(data):,}); copy it again in full."
            )
        kind = _text(ds, "Modality") or "unknown modality"
        raise MammogramError(f"{name} is a DICOM file ({kind}) without pixel data (a report or structured data?).")
    return ds


def _parsed_length(ds) -> int:
    """Where the elements pydicom read end: the file's length unless it was cut short inside an element."""
    ends = [
        e.value_tell + e.length
        for e in ds.values()
        if getattr(e, "value_tell", None) is not None and e.length != 0xFFFFFFFF
    ]
    if ends:
        return max(ends)
    meta_length = ds.file_meta.get("FileMetaInformationGroupLength")
    return 144 + int(meta_length) if isinstance(meta_length, int) else 0


def _dicom_geometry(ds, name: str) -> tuple[int, int, int, str]:
    """Rows, columns, bits stored and photometric interpretation, each checked: :class:`DicomHeaderError`."""
    try:
        rows, cols = int(ds.Rows), int(ds.Columns)
        samples = int(ds.get("SamplesPerPixel", 1))
        frames = int(ds.get("NumberOfFrames", 1) or 1)
        bits, allocated = int(ds.BitsStored), int(ds.get("BitsAllocated", 16) or 16)
    except Exception as err:
        raise DicomHeaderError(
            f"{name} lacks a valid Rows/Columns/BitsStored/NumberOfFrames ({_cause(err)}); export it again."
        ) from err
    if not 1 <= bits <= allocated <= 32 or allocated % 8 and allocated != 1:
        raise DicomHeaderError(
            f"{name} claims {bits} bits stored in {allocated} allocated; BitsStored must lie in "
            "1..BitsAllocated, and BitsAllocated be 1, 8, 16 or 32. Its header is wrong; export it again."
        )
    _check_size(rows, cols, name)
    photometric = _text(ds, "PhotometricInterpretation").upper() or "MONOCHROME2"  # absent or empty: the usual kind
    if samples != 1 or photometric in _COLOUR:
        raise MammogramError(f"{name} is a colour image ({photometric}); a mammogram must be greyscale.")
    if photometric not in ("MONOCHROME1", "MONOCHROME2"):
        raise DicomHeaderError(
            f"{name} has PhotometricInterpretation {photometric!r}, not a DICOM value; a mammogram "
            "is MONOCHROME1 or MONOCHROME2. Export it again."
        )
    if frames != 1:
        raise MammogramError(f"{name} holds {frames} frames (tomosynthesis?); export one 2-D view.")
    return rows, cols, bits, photometric


_COLOUR = (
    "RGB",
    "YBR_FULL",
    "YBR_FULL_422",
    "YBR_PARTIAL_422",
    "YBR_PARTIAL_420",
    "YBR_ICT",
    "YBR_RCT",
    "PALETTE COLOR",
    "HSV",
    "ARGB",
    "CMYK",
)
_VALUE_LIMIT = 1e30  # beyond this a pixel value is no intensity, and float32 arithmetic on it overflows


def _cause(err: BaseException) -> str:
    """The first line of an exception's message (pydicom's and Pillow's can run to many lines)."""
    text = str(err).strip()
    return text.splitlines()[0][:200] if text else type(err).__name__


def _get(ds, keyword: str, default=None):
    """``ds.get(keyword)``, or ``default`` when pydicom cannot convert the element (e.g. a damaged VR)."""
    try:
        return ds.get(keyword, default)
    except Exception:  # noqa: BLE001 - pydicom raises several kinds converting a damaged element
        return default


def _text(ds, keyword: str) -> str:
    """A DICOM text value, stripped, or '' when absent or not text (bytes pydicom could not decode)."""
    value = _get(ds, keyword, "")
    if isinstance(value, bytes):
        value = value.decode("ascii", "replace")
    return str(value or "").strip()


def _number(ds, keyword: str, default: float | None) -> float | None:
    """The first value of a numeric header element; ``default`` when absent or empty; ValueError when not a number."""
    from pydicom.multival import MultiValue

    try:
        value = ds.get(keyword)
    except Exception as err:  # noqa: BLE001 - a damaged element: not a number
        raise ValueError(f"{keyword} cannot be read ({_cause(err)})") from err
    if value is None or value == "" or value == b"":
        return default
    if isinstance(value, (list, tuple, MultiValue)):
        value = value[0] if len(value) else default
    return float(value.decode() if isinstance(value, bytes) else value)


def _modality_values(ds, stored: np.ndarray, name: str) -> np.ndarray:
    """Stored values through RescaleSlope and RescaleIntercept (or the Modality LUT), as finite float32."""
    from pydicom.pixels import apply_modality_lut

    try:
        slope, intercept = _number(ds, "RescaleSlope", 1.0), _number(ds, "RescaleIntercept", 0.0)
    except (TypeError, ValueError) as err:
        raise DicomHeaderError(
            f"{name} has a RescaleSlope/RescaleIntercept that is not a number ({_cause(err)}); export it again."
        ) from err
    if not (np.isfinite(slope) and np.isfinite(intercept)):
        raise DicomHeaderError(
            f"{name} has RescaleSlope {slope} and RescaleIntercept {intercept}; both must be "
            "finite numbers. Export it again."
        )
    if "ModalityLUTSequence" in ds:
        try:
            values = np.asarray(apply_modality_lut(stored, ds), dtype=np.float64)
        except Exception as err:
            raise DicomHeaderError(
                f"{name}'s Modality LUT cannot be applied ({_cause(err)}); export it again."
            ) from err
    else:
        values = stored.astype(np.float64) * slope + intercept
    return _finite(values, name, "RescaleSlope/RescaleIntercept")


def _finite(values: np.ndarray, name: str, cause: str) -> np.ndarray:
    """``values`` as float32 when every one is finite and within ±1e30, else :class:`PixelValueError`."""
    bad = ~np.isfinite(values) | (np.abs(np.nan_to_num(values)) > _VALUE_LIMIT)
    if bad.any():
        raise PixelValueError(
            f"{name}: {int(bad.sum()):,} of {bad.size:,} pixel values are not finite or beyond "
            f"±{_VALUE_LIMIT:.0e} after its {cause}; these are not intensities. Export it again."
        )
    return values.astype(np.float32)


def _windowed(ds, pixels: np.ndarray) -> tuple[np.ndarray, str]:
    """Pixels through the data set's VOI LUT or first window; when that is unusable (a width below 1, not a
    number), the values unwindowed, with a note saying so (the documented fallback)."""
    from pydicom.pixels import apply_voi_lut

    if "VOILUTSequence" not in ds and "WindowCenter" not in ds:
        return pixels, ""
    fallback = "its full range of values is shown (the window is only a display setting)."
    if "VOILUTSequence" not in ds:
        try:
            centre, width = _number(ds, "WindowCenter", None), _number(ds, "WindowWidth", None)
        except (TypeError, ValueError):
            centre = width = None
        if centre is None or width is None or not (np.isfinite(centre) and np.isfinite(width)) or width < 1:
            return pixels, (
                f"Window Center/Width ({_text(ds, 'WindowCenter')!r}/{_text(ds, 'WindowWidth')!r}) is "
                f"not usable (two numbers, a width of at least 1): {fallback}"
            )
    try:
        windowed = np.asarray(apply_voi_lut(pixels, ds), dtype=np.float64)
    except Exception as err:  # pydicom raises several kinds for a malformed VOI LUT
        return pixels, f"Its VOI LUT cannot be applied ({type(err).__name__}): {fallback}"
    if not np.isfinite(windowed).all():
        return pixels, f"Its window gives non-finite values: {fallback}"
    return windowed.astype(np.float32), ""


def _overflow_note(ds, syntax, bits: int) -> str:
    """A note when uncompressed stored values exceed BitsStored (e.g. 12-bit data above 4095), which the
    standard says to mask (pydicom keeps the low bits); '' otherwise."""
    allocated = int(ds.get("BitsAllocated", 16) or 16)  # read already by _dicom_geometry
    if syntax.is_compressed or allocated not in (8, 16, 32) or bits >= allocated:
        return ""
    signed = _get(ds, "PixelRepresentation", 0) == 1
    raw = np.frombuffer(
        ds.PixelData,
        dtype=f"{'<' if syntax.is_little_endian else '>'}{'i' if signed else 'u'}{allocated // 8}",
        count=int(ds.Rows) * int(ds.Columns),
    )
    limit = (1 << (bits - 1)) - 1 if signed else (1 << bits) - 1
    over = int(((raw > limit) | (raw < -limit - 1)).sum())
    if not over:
        return ""
    return (
        f"{over:,} pixels hold values above {limit} that BitsStored {bits} allows; only their low {bits} bits "
        "were kept, as the standard says, so these pixels are wrong: check the export (BitsStored too small?)."
    )


def modality_warning(modality: str) -> str:
    """A warning when a DICOM's Modality is not MG (mammography), else ''."""
    if modality in ("MG", ""):
        return ""
    return (
        f"Modality is {modality}, not MG (mammography): the models were trained on mammograms, "
        "so their output on this image means little."
    )


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
        value = _text(ds, key).upper()
        if value in ("L", "R"):
            laterality = value
            break
    view = _VIEW_ALIASES.get(_text(ds, "ViewPosition").upper(), "")
    for key in ("SeriesDescription", "PatientID", "PatientName"):
        match = _CBIS_NAME.search(_text(ds, key))
        if match:
            laterality = laterality or match.group(1)[0].upper()
            view = view or match.group(2).upper()
            break
    spacing, note = _pixel_spacing(ds)
    return dict(
        laterality=laterality, view=view, pixel_spacing=spacing, manufacturer=_text(ds, "Manufacturer"), note=note
    )


def _pixel_spacing(ds) -> tuple[tuple[float, float] | None, str]:
    """(row, col) mm from PixelSpacing, else ImagerPixelSpacing; ``None`` with a note when the value is not two
    positive finite numbers (the documented fallback: distances in pixels)."""
    from pydicom.multival import MultiValue

    for keyword in ("PixelSpacing", "ImagerPixelSpacing"):
        value = _get(ds, keyword)
        if value is None:
            continue
        try:
            values = [
                float(v) for v in (value if isinstance(value, (list, tuple, MultiValue)) else str(value).split("\\"))
            ]
        except (TypeError, ValueError):
            values = []
        if len(values) == 2 and all(np.isfinite(v) and 1e-4 <= v <= 10 for v in values):
            return (values[0], values[1]), ""
        if value not in (None, "", b""):
            return None, (
                f"{keyword} {str(value)[:40]!r} is not two spacings between 0.0001 and 10 mm, so it is "
                "ignored: distances (e.g. explain --sigma) are in pixels."
            )
    return None, ""


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
        raise MammogramError(
            f"{name} is too large: {size}beyond the {MAX_PIXELS / 1e6:.0f} megapixel limit; downsample it first."
        ) from err
    except UnidentifiedImageError as err:
        raise MammogramError(
            f"{name} is neither a DICOM file nor a PNG or TIFF picture; use DICOM, PNG or TIFF."
        ) from err
    except Exception as err:
        raise MammogramError(f"{name} is a corrupt image ({_cause(err)}).") from err
    if pixels.ndim != 2:
        raise MammogramError(f"{name} has shape {pixels.shape}; a mammogram must be a single grey plane.")
    bits = 1 if pixels.dtype == bool else pixels.dtype.itemsize * 8
    pixels, note = _finite_picture(pixels, name)
    return pixels, {**_picture_tags(mode, bits, fmt), "warning": note}


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
            pages = len(tif.pages)
    except MammogramError:
        raise
    except Exception as err:
        raise MammogramError(f"{name} is a corrupt TIFF ({_cause(err)}).") from err
    bits = pixels.dtype.itemsize * 8
    pixels, note = _finite_picture(pixels, name)
    if inverted:
        pixels = pixels.max() + pixels.min() - pixels
    tags = _picture_tags("MINISWHITE" if inverted else "MINISBLACK", bits, "TIFF")
    if pages > 1:
        note = (
            f"The TIFF holds {pages} pages; page 1 was read, as a mammogram is one image (the others are often "
            "thumbnails or other views): save each view as its own file to read it. " + note
        ).strip()
    tags["warning"] = note
    return pixels, tags


def _finite_picture(pixels: np.ndarray, name: str) -> tuple[np.ndarray, str]:
    """A picture's values as float32 with NaN and inf replaced by the lowest finite value, and a note saying
    how many; :class:`PixelValueError` when none is finite, the values are complex, or beyond ±1e30."""
    if np.iscomplexobj(pixels):
        raise PixelValueError(f"{name} holds complex numbers, not intensities; save the mammogram as grey levels.")
    values = pixels.astype(np.float64)
    finite = np.isfinite(values)
    if not finite.any():
        raise PixelValueError(f"{name} holds no finite pixel value (all NaN or inf); export it again.")
    if np.abs(values[finite]).max() > _VALUE_LIMIT:
        raise PixelValueError(
            f"{name} holds pixel values up to {np.abs(values[finite]).max():.3g}, beyond "
            f"±{_VALUE_LIMIT:.0e}; these are not intensities. Export it again."
        )
    bad = int((~finite).sum())
    if not bad:
        return values.astype(np.float32), ""
    values[~finite] = values[finite].min()
    return values.astype(np.float32), (
        f"{bad:,} of {values.size:,} pixels are NaN or infinite; they were set to the lowest value (background)."
    )


def _picture_tags(mode: str, bits: int, fmt: str) -> dict:
    return dict(
        laterality="",
        view="",
        pixel_spacing=None,
        manufacturer="",
        photometric=mode,
        bit_depth=bits,
        file_format=fmt,
        modality="",
        warning="",
    )
