"""Readable maps: robust scaling, smoothing in mm or px, the top-mass region; drawn in the original geometry."""

import io

import numpy as np
import pytest
from PIL import Image

from hct.data import preprocess
from hct.errors import ConfigError
from hct.explain.display.overlays import (
    compose,
    display_pixels,
    display_shape,
    in_original,
    overlay_picture,
    png_bytes,
    point_in_model,
    point_in_original,
    region_picture,
)
from hct.explain.display.readable import (
    Readability,
    model_pixel_spacing,
    readable,
    robust_scale,
    smooth,
    top_mass_level,
    top_mass_region,
)


def test_a_few_extreme_pixels_no_longer_set_the_colour_scale():
    heat = np.full((100, 100), 1.0, np.float32)
    heat[0, :3] = 1e6  # three extreme pixels
    scaled = robust_scale(heat, 99.5)
    assert scaled[50, 50] == 1.0 and scaled.max() == 1.0  # the field is visible, not dark
    plain = heat / heat.max()
    assert plain[50, 50] < 1e-5
    assert robust_scale(-heat).max() == 0  # only the positive part is drawn


def test_sigma_is_millimetres_with_a_pixel_spacing_and_pixels_without():
    impulse = np.zeros((101, 101), np.float32)
    impulse[50, 50] = 1
    in_pixels = smooth(impulse, 2.0)
    in_mm = smooth(impulse, 2.0, pixel_spacing=(0.5, 0.5))  # 2 mm = 4 pixels
    assert in_mm.sum() == pytest.approx(1, rel=1e-3)
    spread = lambda m: np.sqrt((m.sum(axis=0) * (np.arange(101) - 50) ** 2).sum())  # noqa: E731
    assert spread(in_pixels) == pytest.approx(2, rel=0.02) and spread(in_mm) == pytest.approx(4, rel=0.02)
    assert model_pixel_spacing((0.1, 0.1), (0.5, 0.25)) == (0.2, 0.4) and model_pixel_spacing(None, (1, 1)) is None


def test_top_mass_region_holds_that_share_of_the_mass_and_can_be_outlined():
    heat = np.zeros((10, 10))
    heat[0, 0], heat[1, 1], heat[2, 2], heat[5, 5] = 5, 3, 1, 1
    assert top_mass_level(heat, 0.5) == 5 and top_mass_level(heat, 0.7) == 3
    speckled = np.zeros((200, 200))
    speckled[50:100:2, 50:100:2] = 1  # a dotted square, as saliency draws
    speckled[180, 10] = 1  # a speck far away
    region = top_mass_region(speckled, 0.99)
    assert region[50:99, 50:99].all() and region.sum() < 55 * 55 and not region[180, 10]
    result = readable(speckled, Readability(top_mass=0.99))
    assert np.array_equal(result.region, region) and result.sigma_unit == "px"
    assert readable(heat, Readability(top_mass=None)).region is None
    with pytest.raises(ConfigError):
        Readability(percentile=0)


@pytest.fixture(scope="module")
def right_breast():
    """A right breast: chest wall on the image's right, so canonical preprocessing flips it."""
    pixels = np.zeros((3000, 2000), np.float32)
    pixels[400:2600, 900:] = 1000
    return pixels, preprocess(pixels, (208, 160))


def test_overlays_land_in_the_original_geometry_and_orientation(right_breast):
    pixels, pre = right_breast
    assert pre.flipped
    heat = np.zeros(pre.size, np.float32)
    heat[:, :20] = 1  # the model input's left edge: the chest wall, on the right of the acquired image
    shown = in_original(heat, pre)
    assert shown.shape == display_shape(pixels.shape) == (1000, 667)
    assert shown[500, 660] > 0.5 and shown[500, 400] == 0
    full = in_original(heat, pre, long_side=None)
    assert full.shape == pixels.shape and full[1500, 1990] > 0.5
    # a point goes there and back
    back = point_in_model(pre, point_in_original(pre, (100.0, 30.0)))
    assert back == pytest.approx((100.0, 30.0), abs=0.5)


def test_the_picture_is_rgb_at_display_resolution_and_refuses_another_images_map(right_breast):
    pixels, pre = right_breast
    heat = readable(np.random.default_rng(0).random(pre.size))
    picture = overlay_picture(pixels, pre, heat, opacity=0.5)
    assert picture.shape == (1000, 667, 3) and picture.dtype == np.uint8
    assert Image.open(io.BytesIO(png_bytes(picture))).size == (667, 1000)
    other = preprocess(np.zeros((500, 400), np.float32) + np.eye(500, 400, dtype=np.float32), (208, 160))
    with pytest.raises(ConfigError, match="another image"):
        overlay_picture(display_pixels(pixels), other, heat)
    zoom = region_picture(pixels, pre, heat, (1000, 1000, 1400, 1300))
    assert zoom.shape == (400, 300, 3)  # native pixels: a zoom at full resolution
    assert region_picture(pixels, pre, heat, (0, 0, 3000, 2000)).shape == (1000, 667, 3)
    with pytest.raises(ConfigError, match="outside"):
        region_picture(pixels, pre, heat, (5000, 0, 6000, 10))


def test_opacity_zero_shows_the_image_and_the_outline_is_white():
    grey = np.full((20, 20), 100, np.uint8)
    heat = np.ones((20, 20), np.float32)
    assert (compose(grey, heat, opacity=0.0)[..., 0] == 100).all()
    region = np.zeros((20, 20), bool)
    region[5:15, 5:15] = True
    out = compose(grey, None, region=region)
    assert (out[5, 10] == 255).all() and (out[10, 10] == 100).all()
