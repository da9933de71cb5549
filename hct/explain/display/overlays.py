"""Heat maps drawn on the mammogram as acquired: in its original geometry and orientation (the
inverse of preprocessing, as :class:`~hct.data.Preprocessed` records it), at display resolution
(about 1,000 pixels on the long side) or at full resolution, composed into RGB pictures.

A picture is plain ``uint8`` RGB: the grey image under its window and level, the heat map's colours
with an opacity that grows with the map's value (low values stay transparent), and the outline of
the map's top-mass region in white.
"""

from __future__ import annotations

import dataclasses
import io

import numpy as np
from matplotlib import colormaps
from scipy import ndimage

from hct.data.image.preprocess import Preprocessed, resize
from hct.errors import ConfigError
from hct.explain.display.readable import ReadableMap
from hct.explain.erf.maps import DISPLAY_LONG_SIDE

COLORMAP = "jet"


def display_factor(shape: tuple[int, int], long_side: int | None = DISPLAY_LONG_SIDE) -> float:
    """Display pixels per original pixel: the long side brought to ``long_side`` (never enlarged;
    ``None``: full resolution, 1)."""
    return 1.0 if long_side is None else min(1.0, long_side / max(shape))


def display_shape(shape: tuple[int, int], long_side: int | None = DISPLAY_LONG_SIDE) -> tuple[int, int]:
    """The original ``shape`` at display resolution."""
    factor = display_factor(shape, long_side)
    return max(1, round(shape[0] * factor)), max(1, round(shape[1] * factor))


def display_pixels(pixels: np.ndarray, long_side: int | None = DISPLAY_LONG_SIDE) -> np.ndarray:
    """The original image at display resolution (antialiased; the image itself when already small enough)."""
    shape = display_shape(pixels.shape, long_side)
    return pixels if shape == pixels.shape else resize(pixels, shape).numpy()


def _scaled_geometry(pre: Preprocessed, long_side: int | None) -> Preprocessed:
    """The preprocessing record of the original image resized to display resolution."""
    factor = display_factor(pre.original_shape, long_side)
    if factor == 1.0:
        return pre
    box = tuple(int(round(v * factor)) for v in pre.crop_box)
    return dataclasses.replace(pre, crop_box=box, original_shape=display_shape(pre.original_shape, long_side))


def in_original(heatmap: np.ndarray, pre: Preprocessed, long_side: int | None = DISPLAY_LONG_SIDE) -> np.ndarray:
    """A model-resolution map in the original image's geometry and orientation, at display
    resolution (``long_side``) or full resolution (``None``); zero where the model input did not reach."""
    return _scaled_geometry(pre, long_side).to_original(np.asarray(heatmap, dtype=np.float32))


def point_in_original(
    pre: Preprocessed, point: tuple[float, float], long_side: int | None = DISPLAY_LONG_SIDE
) -> tuple[float, float]:
    """A model-input ``(row, col)`` in the original image's pixels at display resolution (or full)."""
    geometry = _scaled_geometry(pre, long_side)
    scale_r, scale_c = geometry.scale
    row = point[0] / scale_r + geometry.crop_box[0]
    col = point[1] / scale_c + geometry.crop_box[1]
    return row, (geometry.original_shape[1] - col if geometry.flipped else col)


def point_in_model(
    pre: Preprocessed, point: tuple[float, float], long_side: int | None = DISPLAY_LONG_SIDE
) -> tuple[float, float]:
    """An original ``(row, col)`` at display resolution (or full) in model-input pixels, clamped to the input."""
    geometry = _scaled_geometry(pre, long_side)
    row, col, _, _ = geometry.to_model((point[0], point[1], point[0], point[1]))
    height, width = pre.size
    return min(max(row, 0.0), height - 1.0), min(max(col, 0.0), width - 1.0)


def grey(pixels: np.ndarray, window: float | None = None, level: float | None = None) -> np.ndarray:
    """``uint8`` grey levels of ``pixels`` under ``window`` and ``level`` (default: the full range)."""
    low, high = float(pixels.min()), float(pixels.max())
    if window is not None and level is not None:
        low, high = level - window / 2, level + window / 2
    scaled = (np.asarray(pixels, dtype=np.float32) - low) / max(high - low, 1e-6)
    return (np.clip(scaled, 0, 1) * 255).astype(np.uint8)


def outline(region: np.ndarray, width: int = 2) -> np.ndarray:
    """The boundary of a boolean ``region``, ``width`` pixels thick (inside the region)."""
    region = np.asarray(region, dtype=bool)
    return region & ~ndimage.binary_erosion(region, iterations=width, border_value=1)


def compose(
    grey_levels: np.ndarray,
    heat: np.ndarray | None = None,
    opacity: float = 0.5,
    region: np.ndarray | None = None,
    colormap: str = COLORMAP,
) -> np.ndarray:
    """``uint8`` RGB: ``heat`` (in [0, 1], same shape) over the grey image, each pixel's alpha
    ``opacity`` times its value, and the outline of ``region`` in white."""
    rgb = np.repeat(grey_levels[..., None], 3, axis=2).astype(np.float32)
    if heat is not None:
        if heat.shape != grey_levels.shape:
            raise ConfigError(f"heat map {heat.shape} and image {grey_levels.shape} differ in size")
        colours = colormaps[colormap](heat)[..., :3] * 255
        alpha = (opacity * np.clip(heat, 0, 1))[..., None]
        rgb = rgb * (1 - alpha) + colours * alpha
    if region is not None:
        rgb[outline(region)] = 255
    return np.clip(rgb, 0, 255).astype(np.uint8)


def _heat_in_original(
    readable_map: ReadableMap | None, pre: Preprocessed, long_side: int | None
) -> tuple[np.ndarray | None, np.ndarray | None]:
    if readable_map is None:
        return None, None
    heat = in_original(readable_map.values, pre, long_side)
    if readable_map.region is None:
        return heat, None
    return heat, in_original(readable_map.region.astype(np.float32), pre, long_side) > 0.5


def overlay_picture(
    pixels: np.ndarray,
    pre: Preprocessed,
    readable_map: ReadableMap | None,
    opacity: float = 0.5,
    window: float | None = None,
    level: float | None = None,
    long_side: int | None = DISPLAY_LONG_SIDE,
) -> np.ndarray:
    """The mammogram as acquired (``pixels``: the original, or already at this resolution) with
    ``readable_map`` over it, at display resolution (``long_side``) or full resolution (``None``)."""
    shown = display_pixels(pixels, long_side)
    heat, region = _heat_in_original(readable_map, pre, long_side)
    if heat is not None and heat.shape != shown.shape:
        raise ConfigError(
            f"the map's geometry {heat.shape} is not the image's {shown.shape}: the map was made from another image"
        )
    return compose(grey(shown, window, level), heat, opacity, region)


def region_picture(
    pixels: np.ndarray,
    pre: Preprocessed,
    readable_map: ReadableMap | None,
    box: tuple[int, int, int, int],
    opacity: float = 0.5,
    window: float | None = None,
    level: float | None = None,
    long_side: int | None = DISPLAY_LONG_SIDE,
) -> np.ndarray:
    """The picture inside ``box`` (original pixels ``(row0, col0, row1, col1)``) at full resolution,
    brought down to ``long_side`` only when the box is larger than that (a zoom)."""
    rows, cols = pixels.shape
    row0, col0, row1, col1 = max(0, int(box[0])), max(0, int(box[1])), min(rows, int(box[2])), min(cols, int(box[3]))
    if row1 - row0 < 2 or col1 - col0 < 2:
        raise ConfigError(f"zoom box {box} lies outside the {rows}x{cols} image; draw it on the image")
    if window is None or level is None:
        low, high = float(pixels.min()), float(pixels.max())
        window, level = high - low, (high + low) / 2
    heat, region = _heat_in_original(readable_map, pre, None)
    crop = np.s_[row0:row1, col0:col1]
    picture = compose(
        grey(pixels[crop], window, level),
        None if heat is None else heat[crop],
        opacity,
        None if region is None else region[crop],
    )
    shape = display_shape(picture.shape[:2], long_side)
    if shape == picture.shape[:2]:
        return picture
    channels = [resize(picture[..., c].astype(np.float32), shape).numpy() for c in range(3)]
    return np.stack(channels, axis=2).clip(0, 255).astype(np.uint8)


def png_bytes(rgb: np.ndarray) -> bytes:
    """A ``uint8`` RGB (or grey) array as PNG bytes."""
    from PIL import Image

    out = io.BytesIO()
    Image.fromarray(np.ascontiguousarray(rgb)).save(out, format="PNG", compress_level=1)
    return out.getvalue()
