"""Preprocessing modes on the real CBIS-DDSM samples: background clearing, canonical and acquired geometry."""

import dataclasses

import numpy as np
import pytest

from hct.data import Mammogram, breast_mask, builtin_samples, preprocess, read_mammogram
from hct.data.image.preprocess import letterbox_box
from hct.errors import ConfigError

SIZE = (208, 160)


@pytest.fixture(scope="module")
def samples():
    return [(record, read_mammogram(record.path)) for record in builtin_samples()]


def _with_marker(mammogram):
    """The sample with a bright burned-in view marker (a 'CC'-like block) in an empty corner."""
    pixels = mammogram.pixels.copy()
    mask = breast_mask(pixels)
    rows, cols = pixels.shape
    side = slice(cols - 700, cols - 300) if mask[:, : cols // 2].sum() > mask[:, cols // 2 :].sum() else slice(300, 700)
    pixels[200:500, side] = pixels.max()
    return dataclasses.replace(mammogram, pixels=pixels), (200, 500, side.start, side.stop)


@pytest.mark.parametrize("mode", ["canonical", "acquired"])
def test_a_burned_in_marker_is_cleared_from_the_model_input(samples, mode):
    mammogram, (r0, r1, c0, c1) = _with_marker(samples[0][1])
    cleared = preprocess(mammogram, SIZE, mode=mode)
    kept = preprocess(mammogram, SIZE, mode=mode, clear_background=False)
    marker = np.zeros(mammogram.pixels.shape)
    marker[r0:r1, c0:c1] = 1
    # where the marker lands in the model input, through the recorded geometry
    model_box = np.round(cleared.to_model((r0, c0, r1, c1))).astype(int)
    region = (slice(model_box[0] + 1, model_box[2] - 1), slice(model_box[1] + 1, model_box[3] - 1))
    assert kept.tensor[0][region].min() > kept.tensor[0].quantile(0.99)  # the marker is there without clearing
    assert float(cleared.tensor[0][region].std()) == pytest.approx(0, abs=1e-5)  # cleared: flat background
    assert cleared.tensor[0][region].max() < cleared.tensor[0].median() + 1e-5
    assert not cleared.mask[region].any()


def test_acquired_keeps_each_breast_where_it_lies(samples):
    """Mean breast masks of the left and of the right samples sit on opposite sides (canonical: same side)."""
    means = {}
    for mode in ("acquired", "canonical"):
        for side in ("L", "R"):
            masks = [preprocess(m, SIZE, mode=mode).mask for r, m in samples if r.laterality == side]
            means[mode, side] = np.mean(masks, axis=0)
    half = SIZE[1] // 2
    left, right = means["acquired", "L"], means["acquired", "R"]
    assert left[:, :half].sum() > 5 * left[:, half:].sum() and right[:, half:].sum() > 5 * right[:, :half].sum()
    for side in ("L", "R"):
        canonical = means["canonical", side]
        assert canonical[:, :half].sum() > 2 * canonical[:, half:].sum()


def test_acquired_is_a_letterbox_with_no_flip_and_round_trips(samples):
    record, mammogram = samples[2]
    prepared = preprocess(mammogram, SIZE, mode="acquired")
    rows, cols = mammogram.pixels.shape
    assert not prepared.flipped and prepared.crop_box == letterbox_box((rows, cols), SIZE)
    row0, col0, row1, col1 = prepared.crop_box
    assert (row0, row1) == (0, rows) and col0 < 0 < cols < col1 and (col1 - cols) - (-col0) in (0, 1)
    assert (row1 - row0) / (col1 - col0) == pytest.approx(SIZE[0] / SIZE[1], rel=2e-3)
    heat = np.zeros(SIZE, dtype=np.float32)
    heat[50:60, 100:110] = 1
    back = prepared.to_original(heat)
    assert back.shape == (rows, cols)
    box = prepared.to_model(prepared.to_original_box((50, 100, 60, 110)))
    np.testing.assert_allclose(box, (50, 100, 60, 110), atol=1)
    assert "as acquired" in prepared.describe() and "cleared" in prepared.describe()


def test_letterbox_grows_rows_or_columns_symmetrically():
    assert letterbox_box((100, 100), (200, 100)) == (-50, 0, 150, 100)
    assert letterbox_box((100, 20), (100, 50)) == (0, -15, 100, 35)


def test_unknown_mode_is_refused(samples):
    with pytest.raises(ConfigError, match="mode 'sideways'"):
        preprocess(samples[0][1], SIZE, mode="sideways")


def _cropped_breast(rows: int, cols: int, laterality: str, view: str) -> Mammogram:
    """A mammogram already cropped to the breast (as NYU's sample PNGs): the breast fills the image
    from its chest wall (the left for a left breast) with a smooth profile."""
    rr, cc = np.mgrid[0:rows, 0:cols]
    pixels = np.where((cc / cols) ** 2 + ((rr - rows / 2) / (rows / 2)) ** 2 < 1, 1000 - cc / 4 + rr / 8, 0.0)
    pixels = pixels.astype(np.float32)
    if laterality == "R":
        pixels = pixels[:, ::-1].copy()
    meta = read_mammogram(builtin_samples()[0].path).meta
    return Mammogram(pixels, dataclasses.replace(meta, laterality=laterality, view=view, rows=rows, cols=cols))


@pytest.mark.parametrize(
    "laterality, view, box",
    [
        ("L", "CC", (-460, 0, 2484, 1920)),
        ("R", "CC", (-460, 0, 2484, 1920)),
        ("L", "MLO", (0, 0, 2944, 1920)),
    ],
)
def test_nyu_gmic_window_as_their_loading(laterality, view, box):
    """An image smaller than their window is padded with black: CC centred vertically, MLO from the top,
    columns from the chest wall; a right breast is flipped; standardised with the population std."""
    image = _cropped_breast(2023, 801, laterality, view)
    pre = preprocess(image, (2944, 1920), mode="nyu_gmic")
    assert pre.crop_box == box and pre.flipped == (laterality == "R") and pre.size == (2944, 1920)
    oriented = image.pixels[:, ::-1] if pre.flipped else image.pixels
    expected = np.zeros((2944, 1920), np.float32)
    expected[-box[0] : -box[0] + 2023, :801] = oriented
    expected = (expected - expected.mean()) / expected.std()
    assert np.abs(pre.tensor[0].numpy() - expected).max() < 1e-4
    heat = np.zeros((2944, 1920), np.float32)
    heat[-box[0] + 100, 50] = 1  # back on the image as acquired, on the same breast pixel
    restored = pre.to_original(heat)
    assert restored.shape == (2023, 801) and np.unravel_index(restored.argmax(), restored.shape) == (
        100,
        50 if laterality == "L" else 750,
    )


def test_nyu_gmic_window_on_a_larger_image_ends_at_the_breast():
    image = _cropped_breast(3400, 2400, "L", "CC")
    pre = preprocess(image, (2944, 1920), mode="nyu_gmic")
    row0, col0, row1, col1 = pre.crop_box
    assert (row1 - row0, col1 - col0) == (2944, 1920) and 0 <= row0 and row1 <= 3400
    assert col1 == 2400 and abs((row0 + row1) / 2 - 1700) <= 1  # the breast's rightmost pixel; centred rows
