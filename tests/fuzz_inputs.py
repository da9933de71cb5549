"""Seeded generators of hostile inputs and the one verdict on each: a correct read, a clean refusal, or a crash.

Four kinds of input, each with its own entry point into the library:

- ``dicom``: a small valid mammogram whose header values (spacing, window, rescale, bits, photometric,
  modality, sizes, frames, laterality) are replaced by values inside and outside what pydicom and the
  standard allow, written as raw bytes so that pydicom's own validation never stops them; files cut at
  seeded offsets and with seeded byte flips. Read with ``read_mammogram``, then ``preprocess`` and the
  ``explain --sigma`` smoothing (which divides by the spacing).
- ``picture``: TIFFs of every numpy dtype with constant, random, NaN, inf and huge values, multi-page and
  multi-channel; PNGs of every Pillow mode. Read and preprocessed as above.
- ``card``: a real checkpoint's model card with each field's value replaced by one of every JSON type;
  read, listed (``python -m hct models``), loaded and turned into preprocessing settings.
- ``config``: a valid training config with each field set out of range or to another type, and each
  model override likewise; validated, then the model it names is built (what ``train`` does first).

A verdict is ``read`` (the input was used, and what came out is sane), ``refused`` (an
:class:`~hct.errors.HCTError` of the kind's own class with a one-line message) or ``crash`` (anything
else: another exception, a multi-line message, the wrong error class, non-finite pixels, or over the
time bound). ``tests/test_fuzz.py`` asserts no crash; ``bench/fuzz.py`` counts the verdicts.
"""

from __future__ import annotations

import io
import json
import time
import warnings
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from hct.errors import CheckpointError, ConfigError, HCTError, MammogramError

TIME_BOUND_S = 10.0  # one input, read or refused (the slowest legitimate case, a model load, takes < 1 s)
SHAPE = (64, 48)
KIND_ERRORS = {"dicom": MammogramError, "picture": MammogramError, "card": CheckpointError, "config": ConfigError}


@dataclass(frozen=True)
class Verdict:
    kind: str
    case: str
    outcome: str  # 'read', 'refused' or 'crash'
    detail: str
    seconds: float


def judge(kind: str, case: str, attempt: Callable[[], None]) -> Verdict:
    """Run ``attempt`` and say whether it read, refused cleanly or crashed."""
    started = time.perf_counter()
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            attempt()
        outcome, detail = "read", ""
    except KIND_ERRORS[kind] as err:
        message = str(err)
        one_line = bool(message.strip()) and "\n" not in message and "Traceback" not in message
        outcome, detail = ("refused" if one_line else "crash"), message
    except HCTError as err:
        outcome, detail = "crash", f"wrong error class {type(err).__name__}: {err}"
    except Exception as err:  # noqa: BLE001 - the point: any other exception is a crash
        outcome, detail = "crash", f"{type(err).__name__}: {err}"
    seconds = time.perf_counter() - started
    if seconds > TIME_BOUND_S:
        outcome, detail = "crash", f"took {seconds:.1f} s (bound {TIME_BOUND_S} s); {detail}"
    return Verdict(kind, case, outcome, detail.splitlines()[0][:300] if detail else "", seconds)


# ---------------------------------------------------------------- images


def breast_pixels(seed: int, high: int = 4000, dtype=np.uint16) -> np.ndarray:
    """A bright half-ellipse on a dark background, with noise: what the breast mask expects."""
    rows, cols = np.mgrid[0 : SHAPE[0], 0 : SHAPE[1]]
    inside = ((rows - SHAPE[0] / 2) / (SHAPE[0] * 0.45)) ** 2 + (cols / (SHAPE[1] * 0.8)) ** 2 < 1
    noise = np.random.default_rng(seed).integers(0, high // 10, SHAPE)
    return (np.where(inside, high * 0.7, high * 0.03) + noise).astype(dtype)


def use_image(source) -> None:
    """What a reader of the image does: read it, check its pixels, preprocess it, smooth a map in mm."""
    from hct.data import read_mammogram
    from hct.data.image.preprocess import preprocess
    from hct.explain.display.readable import model_pixel_spacing, smooth

    image = read_mammogram(source)
    if not np.isfinite(image.pixels).all():
        raise AssertionError(f"read with {int((~np.isfinite(image.pixels)).sum())} non-finite pixels")
    if "\n" in image.meta.warning:
        raise AssertionError("a warning of several lines")
    pre = preprocess(image, (64, 48))
    if not bool(torch_isfinite(pre.tensor)):
        raise AssertionError("preprocessed to non-finite values")
    spacing = model_pixel_spacing(image.meta.pixel_spacing, pre.scale)
    smoothed = smooth(np.random.default_rng(0).random((64, 48)).astype(np.float32), 2.0, spacing)
    if not np.isfinite(smoothed).all():
        raise AssertionError("a smoothed map with non-finite values")


def torch_isfinite(tensor) -> bool:
    import torch

    return bool(torch.isfinite(tensor).all())


_DS_VALUES = (
    b"abc",
    b"0\\0",
    b"-1\\1",
    b"1e999\\1",
    b"nan\\nan",
    b"0.1",
    b"",
    b"0.1\\0.1\\0.1",
    b"inf\\0.1",
    b"1e-300\\1",
)
_HEADER_CASES: dict[str, tuple[tuple[str, bytes], ...]] = {
    "PixelSpacing": tuple(("DS", v) for v in _DS_VALUES) + (("LO", b"text"), ("US", b"\x00\x00")),
    "ImagerPixelSpacing": tuple(("DS", v) for v in _DS_VALUES[:5]),
    "WindowWidth": tuple(("DS", v) for v in (b"0", b"-5", b"abc", b"1e999", b"nan", b"4096\\0", b"")),
    "WindowCenter": tuple(("DS", v) for v in (b"abc", b"1e999", b"nan", b"-1e30", b"2048\\100\\7", b"")),
    "RescaleSlope": tuple(("DS", v) for v in (b"1e38", b"1e300", b"nan", b"abc", b"0", b"-1", b"inf", b"")),
    "RescaleIntercept": tuple(("DS", v) for v in (b"1e300", b"-1e300", b"nan", b"abc", b"inf", b"")),
    "BitsStored": tuple(("US", int(v).to_bytes(2, "little")) for v in (0, 1, 8, 12, 15, 17, 32, 65535)),
    "BitsAllocated": tuple(("US", int(v).to_bytes(2, "little")) for v in (0, 1, 8, 12, 32, 65535)),
    "HighBit": tuple(("US", int(v).to_bytes(2, "little")) for v in (0, 40, 65535)),
    "PixelRepresentation": tuple(("US", int(v).to_bytes(2, "little")) for v in (1, 2)),
    "PhotometricInterpretation": tuple(
        ("CS", v)
        for v in (
            b"MONOCHROME3",
            b"RGB",
            b"",
            b"PALETTE COLOR",
            b"\xff\xfe",
            b"MONOCHROME1",
            b"YBR_FULL",
            b"monochrome2",
        )
    ),
    "Modality": tuple(("CS", v) for v in (b"CT", b"", b"\x00\x00", b"MG\\CT")),
    "Rows": tuple(("US", int(v).to_bytes(2, "little")) for v in (0, 1, 63, 65, 65535)),
    "Columns": tuple(("US", int(v).to_bytes(2, "little")) for v in (0, 47, 49, 65535)),
    "SamplesPerPixel": tuple(("US", int(v).to_bytes(2, "little")) for v in (0, 3)),
    "NumberOfFrames": tuple(("IS", v) for v in (b"abc", b"0", b"-1", b"2", b"1e3")),
    "ImageLaterality": tuple(("CS", v) for v in (b"X", b"\xff", b"LR", b"")),
    "ViewPosition": tuple(("CS", v) for v in (b"\xff\xfe", b"CCMLO", b"")),
}


def dicom_bytes(
    seed: int = 0,
    bits_stored: int = 12,
    pixels: np.ndarray | None = None,
    raw: dict[str, tuple[str, bytes]] | None = None,
) -> bytes:
    """A small MG DICOM (12 bits stored unless told) with header elements ``raw`` written as raw bytes."""
    from pydicom.dataelem import RawDataElement
    from pydicom.tag import Tag

    from hct.data.image.dicom_write import mammogram_dataset, write_dataset

    pixels = breast_pixels(seed) if pixels is None else pixels
    ds = mammogram_dataset(
        pixels,
        bits_stored=bits_stored,
        ImageLaterality="L",
        ViewPosition="CC",
        PixelSpacing=[0.1, 0.1],
        WindowCenter=2000,
        WindowWidth=4000,
        RescaleSlope=1,
        RescaleIntercept=0,
    )
    for keyword, (vr, value) in (raw or {}).items():
        tag = Tag(keyword)
        value = value + b" " if len(value) % 2 else value  # DICOM values have even lengths
        ds[tag] = RawDataElement(tag, vr, len(value), value, 0, False, True)
    return write_dataset(ds)


def dicom_cases(seed: int = 0, random_cases: int = 40) -> Iterator[tuple[str, bytes]]:
    """Every listed header value, 12-bit overflow, then seeded truncations and byte flips."""
    for keyword, values in _HEADER_CASES.items():
        for vr, value in values:
            yield f"{keyword}={value[:20]!r} ({vr})", dicom_bytes(raw={keyword: (vr, value)})
    overflow = breast_pixels(0)
    overflow[:4, :4] = 60000
    yield "12-bit image holding values above 4095", dicom_bytes(pixels=overflow)
    yield "8-bit image", dicom_bytes(bits_stored=8, pixels=breast_pixels(0, 250, np.uint8))
    yield "constant image", dicom_bytes(pixels=np.full(SHAPE, 7, np.uint16))
    yield "window with huge rescale", dicom_bytes(raw={"RescaleSlope": ("DS", b"1e30"), "WindowWidth": ("DS", b"1")})
    rng = np.random.default_rng(seed)
    base = dicom_bytes()
    pixel_start = base.rfind(b"\xe0\x7f\x10\x00")
    for n in range(random_cases):
        if n % 2:
            cut = int(rng.integers(132, len(base) - 1))
            where = "header" if cut < pixel_start else "pixel data"
            yield f"cut at byte {cut} (in the {where})", base[:cut]
        else:
            data = bytearray(base)
            positions = rng.integers(132, pixel_start, 3)
            for p in positions:
                data[p] = int(rng.integers(0, 256))
            yield f"header bytes {sorted(positions.tolist())} flipped", bytes(data)


def tiff_bytes(array: np.ndarray, **options) -> bytes:
    import tifffile

    out = io.BytesIO()
    tifffile.imwrite(out, array, **options)
    return out.getvalue()


def multipage_tiff(pages: list[np.ndarray]) -> bytes:
    import tifffile

    out = io.BytesIO()
    with tifffile.TiffWriter(out) as tif:
        for page in pages:
            tif.write(page, photometric="minisblack")
    return out.getvalue()


_DTYPES = (
    "uint8",
    "int8",
    "uint16",
    "int16",
    "uint32",
    "int32",
    "int64",
    "uint64",
    "float16",
    "float32",
    "float64",
    "complex64",
    "bool",
)


def picture_cases(seed: int = 0) -> Iterator[tuple[str, bytes]]:
    """TIFFs of every dtype and odd values, multi-page and multi-channel TIFFs, PNGs of every mode."""
    from PIL import Image

    rng = np.random.default_rng(seed)
    base = breast_pixels(seed).astype(np.float64)
    for dtype in _DTYPES:
        for name, values in (
            ("breast", base),
            ("random", rng.random(SHAPE) * 1000),
            ("constant", np.ones(SHAPE)),
            ("negative", -base),
        ):
            yield f"TIFF {dtype} {name}", tiff_bytes(values.astype(dtype))
    for name, odd in (("one NaN", np.nan), ("inf", np.inf), ("-inf", -np.inf), ("huge", 3e38)):
        for dtype in ("float16", "float32", "float64"):
            values = base.astype(dtype)
            with np.errstate(over="ignore"):
                values[10:12, 10:12] = odd
            yield f"TIFF {dtype} {name}", tiff_bytes(values)
    for dtype in ("float32", "float64"):
        yield f"TIFF {dtype} all NaN", tiff_bytes(np.full(SHAPE, np.nan, dtype))
        mostly = base.astype(dtype)
        mostly[:, 5:] = np.nan
        yield f"TIFF {dtype} mostly NaN", tiff_bytes(mostly)
    yield "TIFF 3 pages", multipage_tiff([base.astype(np.uint16), base[:32].astype(np.uint16), base.astype(np.uint8)])
    yield (
        "TIFF 2 channels",
        tiff_bytes(np.stack([base, base], -1).astype(np.uint16), photometric="minisblack", planarconfig="contig"),
    )
    yield "TIFF MINISWHITE", tiff_bytes(base.astype(np.uint16), photometric="miniswhite")
    for mode in ("1", "L", "I;16", "I", "LA", "P", "RGB", "F"):
        image = Image.fromarray(breast_pixels(seed, 250, np.uint8)).convert(mode)
        out = io.BytesIO()
        try:
            image.save(out, format="PNG")
        except OSError:  # Pillow cannot write this mode as PNG; TIFF instead
            image.save(out, format="TIFF")
        yield f"Pillow mode {mode}", out.getvalue()


# ---------------------------------------------------------------- model cards

_TYPE_SAMPLES = {
    "list": [1, 2],
    "string": "x",
    "int": 7,
    "negative": -3,
    "float": 0.5,
    "nan": float("nan"),
    "object": {"a": 1},
    "null": None,
    "bool": True,
    "nested": [[{}]],
}


def card_cases(card: dict) -> Iterator[tuple[str, dict]]:
    """``card`` with each field's value replaced by each kind of JSON value, and with each field removed."""
    for key in card:
        for name, value in _TYPE_SAMPLES.items():
            yield f"{key} = {name}", {**card, key: value}
        yield f"{key} removed", {k: v for k, v in card.items() if k != key}
    yield "metrics.test_auc a string", {**card, "metrics": {"test_auc": "high"}}
    yield "input_size of three", {**card, "input_size": [64, 48, 3]}
    yield "input_size of strings", {**card, "input_size": ["64", "48"]}
    yield "input_size of 4x4", {**card, "input_size": [4, 4]}
    yield "input_size of 10^6 a side", {**card, "input_size": [10**6, 10**6]}
    yield "overrides num_classes -1", {**card, "overrides": {"num_classes": -1}}
    yield "overrides unknown key", {**card, "overrides": {"depth": 3}}
    yield "preprocessing mode a list", {**card, "preprocessing": {"mode": [1]}}


def use_card(card_path: Path) -> None:
    """What ``models``, ``predict`` and ``load_model`` do with a card."""
    from hct.data.image.preprocess import parse_size
    from hct.eval.predictions import card_preprocessing
    from hct.models.card import read_card
    from hct.models.checkpoints import load_model
    from hct.models.cli import checkpoint_lines

    card = read_card(card_path)
    checkpoint_lines([card_path.with_suffix(".safetensors")])
    card_preprocessing(card)
    if card.input_size:  # what `predict` does with a card's input size
        parse_size(card.input_size)
    load_model(str(card_path.with_suffix(".safetensors")))


# ---------------------------------------------------------------- training configs

_OUT_OF_RANGE = ("negative", -1, 0, 10**12, 1e400, float("nan"), "x", [1], {"a": 1}, None, True, 2.5)
OVERRIDE_FIELDS = (
    "num_classes",
    "in_chans",
    "first_stage_stride",
    "drop_rate",
    "attn_drop",
    "heads",
    "num_mixer_stages",
    "num_ac_stages",
)


def valid_config(folder: Path) -> dict:
    """A training config that passes the check (an empty manifest in ``folder``): the base of :func:`config_cases`."""
    manifest = folder / "manifest.csv"
    manifest.write_text("image_id,path,label,split\n")
    return {
        "manifest": str(manifest),
        "model": "gmic",
        "stage": "image",
        "input_size": [64, 48],
        "patch_size": 32,
        "epochs": 1,
        "batch_size": 2,
        "out_dir": str(folder / "run"),
        "device": "cpu",
    }


def config_cases(config: dict) -> Iterator[tuple[str, dict]]:
    """``config`` with each field out of range or of another type, each model override likewise, and
    manifests that are not CSV files."""
    for key in config:
        for value in _OUT_OF_RANGE:
            value = (
                -abs(config[key])
                if value == "negative" and isinstance(config[key], (int, float)) and not isinstance(config[key], bool)
                else value
            )
            yield f"{key} = {value!r}", {**config, key: value}
    for key in OVERRIDE_FIELDS:
        for value in (-1, 0, 3, 10**6, 1.5, float("nan"), "x", None, True, [2]):
            yield f"overrides.{key} = {value!r}", {**config, "overrides": {key: value}}
    yield "model hct_nystrom heads 7", {**config, "model": "hct_nystrom", "overrides": {"heads": 7}}


def use_config(config: dict) -> None:
    """What ``train`` does before its first step: validate, then build the model."""
    from hct.models import create_model
    from hct.train.config import TrainConfig

    checked = TrainConfig.from_dict(json.loads(json.dumps(config, allow_nan=True)))
    create_model(checked.model, **checked.overrides)
