"""Reading mammograms: real CBIS-DDSM samples, crafted DICOMs, PNG/TIFF, and every kind of bad input."""

import io
import struct
import zlib
from dataclasses import replace

import numpy as np
import pydicom
import pytest
import tifffile
from PIL import Image
from pydicom.data import get_testdata_file
from pydicom.dataset import FileMetaDataset

from hct.data import builtin_samples, infer_laterality, read_mammogram
from hct.data.image import reading
from hct.data.image.dicom_write import mammogram_dataset, write_dataset
from hct.data.image.reading import view_from_name, with_name
from hct.data.sets.exams import exam_from_name
from hct.errors import MammogramError, PathError


@pytest.fixture(scope="module")
def samples():
    records = builtin_samples()
    return [(record, read_mammogram(record.path)) for record in records]


def make_dicom(pixels: np.ndarray, **tags) -> bytes:
    return write_dataset(mammogram_dataset(pixels.astype(np.uint16), **tags))


RAMP = np.tile(np.arange(0, 1000, 10, dtype=np.uint16), (64, 1))  # 64 x 100, values 0..990


def test_samples_have_tags_and_laterality_inference_agrees(samples):
    assert len(samples) == 8
    for record, mammogram in samples:
        meta = mammogram.meta
        assert meta.laterality_from == "tags" and meta.view in ("CC", "MLO")
        assert record.laterality == meta.laterality and record.view == meta.view
        assert infer_laterality(mammogram.pixels) == meta.laterality, record.image_id
        assert mammogram.pixels.dtype == np.float32 and mammogram.pixels.shape == (meta.rows, meta.cols)
    assert sorted(r.label for r, _ in samples) == [0] * 4 + [1] * 4


def test_sample_metadata_holds_no_patient_identifiers(samples):
    for _, mammogram in samples:
        text = repr(mammogram.meta)
        assert "P_00" not in text and "Mass-Test" not in text
        assert not any("patient" in name.lower() for name in vars(mammogram.meta))


def test_monochrome1_is_inverted():
    image = read_mammogram(make_dicom(RAMP, PhotometricInterpretation="MONOCHROME1"))
    np.testing.assert_array_equal(image.pixels, 990 - RAMP.astype(np.float32))
    assert image.meta.source == "<bytes>"


def test_rescale_slope_and_intercept_applied():
    image = read_mammogram(make_dicom(RAMP, RescaleSlope="2", RescaleIntercept="-10"))
    np.testing.assert_allclose(image.pixels, RAMP * 2.0 - 10)


def test_voi_window_applied():
    pixels = read_mammogram(make_dicom(RAMP, WindowCenter="500", WindowWidth="200")).pixels[0]
    values = dict(zip(RAMP[0].tolist(), pixels.tolist()))
    assert values[300] == values[0] == pixels.min()
    assert values[700] == values[990] == pixels.max() == 65535
    inside = [values[v] for v in range(410, 600, 10)]
    assert all(a < b for a, b in zip(inside, inside[1:]))


def test_laterality_and_view_from_tags_and_file_object():
    data = make_dicom(RAMP, ImageLaterality="R", ViewPosition="MLO", PixelSpacing=["0.07", "0.07"])
    meta = read_mammogram(io.BytesIO(data)).meta
    assert (meta.laterality, meta.view, meta.laterality_from, meta.pixel_spacing) == ("R", "MLO", "tags", (0.07, 0.07))


def test_cbis_name_strings_give_laterality_and_view():
    meta = read_mammogram(make_dicom(RAMP, PatientID="Calc-Test_P_00038_LEFT_CC")).meta
    assert (meta.laterality, meta.view) == ("L", "CC")


def test_png_and_tiff_8_and_16_bit(tmp_path):
    blob = np.zeros((64, 48), dtype=np.uint16)
    blob[10:50, :20] = 40000  # breast on the image's left
    Image.fromarray(blob).save(tmp_path / "a16.png")
    Image.fromarray((blob // 256).astype(np.uint8)).save(tmp_path / "a8.png")
    tifffile.imwrite(tmp_path / "a16.tif", blob)
    for name, bits, top in (("a16.png", 16, 40000), ("a8.png", 8, 156), ("a16.tif", 16, 40000)):
        image = read_mammogram(tmp_path / name)
        assert image.meta.bit_depth == bits and image.pixels.max() == top
        assert image.meta.laterality == "L" and image.meta.laterality_from == "image"


def _sample_bytes(samples) -> bytes:
    with open(samples[0][0].path, "rb") as handle:
        return handle.read()


def _modified_sample(samples, change) -> bytes:
    ds = pydicom.dcmread(io.BytesIO(_sample_bytes(samples)))
    change(ds)
    out = io.BytesIO()
    ds.save_as(out)
    return out.getvalue()


@pytest.mark.parametrize(
    "case, words",
    [
        ("empty", "empty"),
        ("truncated", "truncated"),
        ("no_pixels", "without pixel data"),
        ("unknown_syntax", "transfer syntax"),
        ("text", "neither a DICOM file nor a PNG or TIFF"),
        ("colour_png", "colour"),
        ("colour_dicom", "colour"),
    ],
)
def test_bad_input_raises_mammogram_error(samples, case, words):
    def drop_pixels(ds):
        del ds.PixelData

    def unknown_syntax(ds):
        ds.file_meta.TransferSyntaxUID = "1.2.3.4.5.6.7"

    def colour(ds):
        ds.SamplesPerPixel = 3
        ds.PhotometricInterpretation = "RGB"

    if case == "empty":
        data = b""
    elif case == "truncated":
        data = _sample_bytes(samples)[:1_000_000]
    elif case == "no_pixels":
        data = _modified_sample(samples, drop_pixels)
    elif case == "unknown_syntax":
        data = _modified_sample(samples, unknown_syntax)
    elif case == "text":
        data = b"hello, this is not a mammogram" * 10
    elif case == "colour_png":
        out = io.BytesIO()
        Image.new("RGB", (64, 64), (200, 10, 10)).save(out, format="PNG")
        data = out.getvalue()
    else:
        data = make_dicom(RAMP, SamplesPerPixel=3, PhotometricInterpretation="RGB")
    with pytest.raises(MammogramError, match=words):
        read_mammogram(data)


def test_size_limit(monkeypatch):
    monkeypatch.setattr(reading, "MAX_PIXELS", 1000)
    with pytest.raises(MammogramError, match="megapixel limit"):
        read_mammogram(make_dicom(RAMP))


def test_missing_path(tmp_path):
    with pytest.raises(PathError, match="does not exist"):
        read_mammogram(tmp_path / "nope.dcm")


@pytest.mark.parametrize("syntax", [pydicom.uid.RLELossless, pydicom.uid.JPEG2000Lossless])
def test_compressed_dicoms_decode_exactly(syntax):
    """RLE and JPEG 2000 (through the pylibjpeg plugins) decode to the pixels that were encoded."""
    pixels = np.random.default_rng(0).integers(0, 4000, (64, 48)).astype(np.uint16)
    ds = pydicom.dcmread(io.BytesIO(make_dicom(pixels, BitsStored=12, HighBit=11)))
    ds.compress(syntax)
    out = io.BytesIO()
    ds.save_as(out)
    assert pydicom.dcmread(io.BytesIO(out.getvalue())).file_meta.TransferSyntaxUID == syntax
    np.testing.assert_array_equal(read_mammogram(out.getvalue()).pixels, pixels)


def _png_header(width: int, height: int) -> bytes:
    """A PNG whose header claims ``width x height`` grey pixels (its data is a few bytes)."""

    def chunk(kind: bytes, body: bytes) -> bytes:
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))

    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0))
        + chunk(b"IDAT", zlib.compress(b"\x00" * 16))
        + chunk(b"IEND", b"")
    )


@pytest.mark.parametrize("side", [12_000, 40_000])  # PIL warns past the limit and refuses past twice it
def test_a_png_beyond_the_limit_is_called_too_large_with_the_limit(side):
    with pytest.raises(MammogramError, match=r"too large: .*beyond the 100 megapixel limit"):
        read_mammogram(_png_header(side, side))


def test_a_dicom_claiming_more_pixels_than_it_holds():
    ds = pydicom.dcmread(io.BytesIO(make_dicom(RAMP)))
    ds.Rows, ds.Columns = 40_000, 40_000
    out = io.BytesIO()
    ds.save_as(out)
    with pytest.raises(MammogramError, match="too large: 40000x40000.*100 megapixel limit"):
        read_mammogram(out.getvalue())
    ds.Rows, ds.Columns = 640, 1000
    out = io.BytesIO()
    ds.save_as(out)
    with pytest.raises(MammogramError, match=r"claims 640x1000 pixels .* holds 12,800 bytes"):
        read_mammogram(out.getvalue())


@pytest.mark.parametrize("name", ["ExplVR_LitEndNoMeta.dcm", "ExplVR_BigEndNoMeta.dcm"])
def test_pydicom_files_without_preamble_or_meta_are_read_as_dicom(name):
    """They hold an RT plan: read as DICOM, refused for holding no pixels (not as 'neither DICOM nor PNG')."""
    with pytest.raises(MammogramError, match=r"DICOM file \(RTPLAN\) without pixel data"):
        read_mammogram(get_testdata_file(name))


@pytest.mark.parametrize("little_endian", [True, False])
def test_a_dicom_written_without_preamble_or_meta_is_read(little_endian):
    ds = pydicom.dcmread(io.BytesIO(make_dicom(RAMP, ImageLaterality="L", ViewPosition="CC")))
    ds.file_meta, ds.preamble = FileMetaDataset(), None
    if not little_endian:
        ds.PixelData = RAMP.astype(">u2").tobytes()
    out = io.BytesIO()
    pydicom.dcmwrite(out, ds, implicit_vr=False, little_endian=little_endian, enforce_file_format=False)
    assert out.getvalue()[128:132] != b"DICM"
    image = read_mammogram(out.getvalue())
    np.testing.assert_array_equal(image.pixels, RAMP)
    assert (image.meta.laterality, image.meta.view, image.meta.modality, image.meta.warning) == ("L", "CC", "MG", "")


@pytest.mark.parametrize("name, modality", [("CT_small.dcm", "CT"), ("MR_small.dcm", "MR"), ("no_meta.dcm", "CT")])
def test_another_modality_is_read_with_a_warning_naming_it(name, modality):
    image = read_mammogram(get_testdata_file(name))
    assert image.meta.modality == modality and f"Modality is {modality}, not MG" in image.meta.warning
    assert image.pixels.shape == (image.meta.rows, image.meta.cols)


def test_the_read_command_warns_of_another_modality(capsys):
    from hct.__main__ import main

    assert main(["read", get_testdata_file("MR_small.dcm")]) == 0
    out, err = capsys.readouterr()
    assert '"modality": "MR"' in out and "warning: Modality is MR, not MG" in err


@pytest.mark.parametrize(
    "name, expected",
    [
        ("0_L-CC.png", ("L", "CC")),
        ("0_R-MLO.png", ("R", "MLO")),
        ("LCC.dcm", ("L", "CC")),
        ("p1_L_CC.tif", ("L", "CC")),
        ("Calc-Test_P_00038_LEFT_CC.png", ("L", "CC")),
        ("RIGHT_MLO.png", ("R", "MLO")),
        ("exam3-rmlo.png", ("R", "MLO")),
        ("/data/R CC/scan.png", ("", "")),
        ("scan.png", ("", "")),
        ("ACCURATE.png", ("", "")),
        ("XRCC.png", ("", "")),
    ],
)
def test_view_from_file_name(name, expected):
    assert view_from_name(name) == expected


def test_file_name_fills_what_tags_lack_and_header_wins(tmp_path):
    named = tmp_path / "0_R-MLO.png"
    blob = np.zeros((64, 48), dtype=np.uint8)
    blob[10:50, :20] = 200  # the breast lies on the image's left (a left breast); the name says right
    Image.fromarray(blob).save(named)
    meta = read_mammogram(named).meta
    assert (meta.laterality, meta.laterality_from, meta.view, meta.view_from) == ("R", "name", "MLO", "name")
    from_tags = replace(meta, laterality="L", laterality_from="tags", view="CC", view_from="tags")
    assert with_name(from_tags, "0_R-MLO.png") == from_tags


def test_four_uploads_named_by_view_share_an_exam():
    names = ["0_L-CC.png", "0_R-CC.png", "0_L-MLO.png", "0_R-MLO.png"]
    assert len({exam_from_name(n) for n in names}) == 1 and exam_from_name(names[0])
    assert exam_from_name("1_L-CC.png") != exam_from_name("0_L-CC.png") and exam_from_name("scan.png") == ""
