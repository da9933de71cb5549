"""Preprocessing a mammogram for a model, and the way back.

Three modes. ``canonical`` (classification and training): flip so the chest wall is on the image's
left, crop to the breast, resize to the model size. ``acquired`` (the ERF study, paper Sec. 4): keep
the image as acquired, no flip and no crop, resized to fit the model size with the aspect ratio
kept (padded with background), so a right breast lies on the other side from a left one.
``nyu_gmic`` (NYU's GMIC, nyukat/GMIC): flip right breasts so the chest wall is on the left, take
the breast with their 50-pixel margin (an image already cropped by their pipeline stays whole), then
a 2944x1920 window at native resolution placed as their optimal centre places it (:func:`nyu_box`),
resized to the model size only when that is another, padded with black. In the others, everything
outside the breast (burned-in labels, view markers, rulers) is cleared to the background value
unless ``clear_background=False`` (``nyu_gmic`` never clears, as their pipeline). The result is
normalised to zero mean, unit std (``nyu_gmic``: their formula, population std floored at 1e-5).

Each step is a plain function; :func:`preprocess` composes them and records what it did, so that a
heat map at model resolution can be drawn on the original image (:meth:`Preprocessed.to_original`)
and a finding box on the model input (:meth:`Preprocessed.to_model`).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F

from hct.data.image.breast import breast_mask, breast_side
from hct.data.image.reading import Mammogram
from hct.data.options import MODES
from hct.data.records import Box
from hct.errors import ConfigError

FULL_SIZE = (3328, 2560)
HALF_SIZE = (1664, 1280)
NYU_WINDOW = (2944, 1920)  # their INPUT_SIZE_DICT: the window cut at native resolution
NYU_MARGIN = 50  # their crop_mammogram's buffer around the breast
# 2: background cleared outside the breast and the acquired mode added; 1: crop only, never cleared.
PREPROCESSING_VERSION = 2


def preprocessing_info(mode: str, clear_background: bool) -> dict:
    """How inputs were made, as recorded in a model card (``ModelCard.preprocessing``)."""
    return {"mode": mode, "clear_background": clear_background, "version": PREPROCESSING_VERSION}


def clear_outside(pixels: np.ndarray, mask: np.ndarray) -> tuple[np.ndarray, float]:
    """``pixels`` with everything outside ``mask`` set to the background level (the median outside
    the breast), and that level. Nothing outside the mask: the image and its minimum, unchanged."""
    outside = ~mask
    if not outside.any():
        return pixels, float(pixels.min())
    background = float(np.median(pixels[outside][:: max(1, int(outside.sum()) // 200_000)]))
    return np.where(mask, pixels, np.float32(background)).astype(np.float32, copy=False), background


def orient(pixels: np.ndarray, mask: np.ndarray, laterality: str = "") -> tuple[np.ndarray, np.ndarray, bool]:
    """Flip left-right so the chest wall is on the image's left (a right breast's image, by its
    ``laterality`` when given, else by the side the breast lies on); returns (pixels, mask, flipped)."""
    if (laterality or breast_side(mask)) == "L":
        return pixels, mask, False
    return pixels[:, ::-1], mask[:, ::-1], True


def _laterality(image: Mammogram | np.ndarray) -> str:
    return image.meta.laterality if isinstance(image, Mammogram) else ""


def letterbox_box(shape: tuple[int, int], size: tuple[int, int]) -> Box:
    """The whole image grown symmetrically to the aspect ratio of ``size`` (extends past the image)."""
    rows, cols = shape
    aspect = size[0] / size[1]
    if rows / cols < aspect:
        grow = int(round(cols * aspect)) - rows
        return (-(grow // 2), 0, rows - grow // 2 + grow, cols)
    grow = int(round(rows / aspect)) - cols
    return (0, -(grow // 2), rows, cols - grow // 2 + grow)


def crop_box(mask: np.ndarray, size: tuple[int, int]) -> Box:
    """The breast's bounding box grown to the aspect ratio of ``size`` (may extend past the image).

    Rows grow symmetrically; columns grow away from the chest wall (on the left). An empty mask
    gives the image.
    """
    rows, cols = mask.shape
    if not mask.any():
        row0, row1, col0, col1 = 0, rows, 0, cols
    else:
        row_any, col_any = mask.any(axis=1), mask.any(axis=0)
        row0, row1 = int(np.argmax(row_any)), rows - int(np.argmax(row_any[::-1]))
        col0, col1 = int(np.argmax(col_any)), cols - int(np.argmax(col_any[::-1]))
    height, width = row1 - row0, col1 - col0
    aspect = size[0] / size[1]
    if height / width < aspect:
        grow = int(round(width * aspect)) - height
        row0 -= grow // 2
        row1 = row0 + height + grow
    else:
        col1 = col0 + int(round(height / aspect))
    return (row0, col0, row1, col1)


def nyu_box(mask: np.ndarray, view: str, window: tuple[int, int] = NYU_WINDOW) -> Box:
    """Their window (chest wall on the left): rows centred on the breast region for CC, from its top
    for MLO, or where it holds the most breast rows (nearest the centre) when the region is taller;
    columns from the chest wall, or ending at the breast's rightmost pixel when the region is wider.
    The region is the breast's bounding box with their margin, within the image."""
    rows, cols = mask.shape
    row_any, col_any = mask.any(axis=1), mask.any(axis=0)
    if not row_any.any():
        row_any, col_any = np.ones(rows, bool), np.ones(cols, bool)
    top = max(int(np.argmax(row_any)) - NYU_MARGIN, 0)
    bottom = min(rows - int(np.argmax(row_any[::-1])) + NYU_MARGIN, rows)
    rightmost = cols - int(np.argmax(col_any[::-1]))
    right = min(rightmost + NYU_MARGIN, cols)
    height, width = window
    if bottom - top <= height:
        row0 = top - (height - (bottom - top)) // 2 if view == "CC" else top
    else:
        counts = np.concatenate([[0], np.cumsum(row_any[top:bottom])])
        inside = counts[height:] - counts[:-height]
        best = np.flatnonzero(inside == inside.max())
        row0 = top + int(best[np.argmin(np.abs(best - (bottom - top - height) / 2))])
    col0 = 0 if right <= width else rightmost - width
    return (row0, col0, row0 + height, col0 + width)


def crop(array: np.ndarray, box: Box, fill: float = 0.0) -> np.ndarray:
    """The part of ``array`` inside ``box``; where the box leaves the image it holds ``fill``."""
    row0, col0, row1, col1 = box
    out = np.full((row1 - row0, col1 - col0), fill, dtype=array.dtype)
    r0, c0 = max(row0, 0), max(col0, 0)
    r1, c1 = min(row1, array.shape[0]), min(col1, array.shape[1])
    if r1 > r0 and c1 > c0:
        out[r0 - row0 : r1 - row0, c0 - col0 : c1 - col0] = array[r0:r1, c0:c1]
    return out


def resize(array: np.ndarray, size: tuple[int, int]) -> torch.Tensor:
    """Bilinear resize with antialiasing (float32 tensor of shape ``size``)."""
    tensor = torch.from_numpy(np.ascontiguousarray(array, dtype=np.float32))[None, None]
    if tuple(tensor.shape[-2:]) == tuple(size):
        return tensor[0, 0]
    return F.interpolate(tensor, size=tuple(size), mode="bilinear", antialias=True, align_corners=False)[0, 0]


def normalise(tensor: torch.Tensor, nyu: bool = False) -> torch.Tensor:
    """Zero mean, unit standard deviation over the whole image (as GMIC does; ``nyu``: exactly as
    their loading.py, the population std floored at 1e-5)."""
    centred = tensor - tensor.mean()
    if nyu:
        return centred / max(float(tensor.std(correction=0)), 1e-5)
    std = tensor.std()
    return centred / std if std > 0 else centred


def parse_size(text: str | tuple[int, int]) -> tuple[int, int]:
    """'1664x1280', 'full', 'half' or (H, W) -> (H, W)."""
    if isinstance(text, (tuple, list)):
        size = tuple(int(v) for v in text)
    elif text == "full":
        size = FULL_SIZE
    elif text == "half":
        size = HALF_SIZE
    else:
        try:
            size = tuple(int(v) for v in str(text).lower().split("x"))
        except ValueError:
            size = ()
    if len(size) != 2 or min(size) < 8:
        raise ConfigError(f"Size {text!r} is not HxW with both sides >= 8 (e.g. 1664x1280, 'full', 'half').")
    return size  # type: ignore[return-value]


@dataclass
class Preprocessed:
    """A model input and the record of how it was made from the original image."""

    tensor: torch.Tensor  # (1, H, W) float32, zero mean unit std
    mask: np.ndarray  # (H, W) bool breast mask at model resolution
    flipped: bool  # the original was flipped left-right
    crop_box: Box  # in the (flipped) original's pixels; may extend past the image
    original_shape: tuple[int, int]
    mode: str = "canonical"
    cleared: bool = True  # everything outside the breast was set to the background level

    def describe(self) -> str:
        """The mode in words, for figure titles."""
        what = {"acquired": "as acquired", "nyu_gmic": "NYU GMIC window (chest wall left, 2944x1920)"}.get(
            self.mode, "canonical (chest wall left, cropped)"
        )
        return f"{what}, {'background cleared' if self.cleared else 'background kept'}"

    @property
    def size(self) -> tuple[int, int]:
        return tuple(self.tensor.shape[-2:])  # type: ignore[return-value]

    @property
    def scale(self) -> tuple[float, float]:
        """Model pixels per original pixel, (rows, cols)."""
        row0, col0, row1, col1 = self.crop_box
        return self.size[0] / (row1 - row0), self.size[1] / (col1 - col0)

    def to_model(self, box: Box) -> tuple[float, float, float, float]:
        """An original-pixel box (row0, col0, row1, col1) in model-input coordinates."""
        row0, col0, row1, col1 = box
        if self.flipped:
            col0, col1 = self.original_shape[1] - col1, self.original_shape[1] - col0
        scale_r, scale_c = self.scale
        br0, bc0 = self.crop_box[:2]
        return ((row0 - br0) * scale_r, (col0 - bc0) * scale_c, (row1 - br0) * scale_r, (col1 - bc0) * scale_c)

    def to_model_mask(self, mask: np.ndarray) -> np.ndarray:
        """An original-size boolean mask at model resolution: the model pixels it covers by half or more
        (by any part, when that leaves none, so a finding smaller than a model pixel is not lost)."""
        if mask.shape != self.original_shape:
            raise ConfigError(f"Mask is {mask.shape}, expected the original image's {self.original_shape}.")
        covered = resize(crop(mask[:, ::-1] if self.flipped else mask, self.crop_box).astype(np.float32), self.size)
        inside = covered >= 0.5
        return (inside if inside.any() else covered > 0).numpy()

    def to_original_box(self, box: tuple[float, float, float, float]) -> Box:
        """A model-input box in the original image's pixels (rounded outward)."""
        scale_r, scale_c = self.scale
        br0, bc0 = self.crop_box[:2]
        row0, row1 = int(np.floor(box[0] / scale_r + br0)), int(np.ceil(box[2] / scale_r + br0))
        col0, col1 = int(np.floor(box[1] / scale_c + bc0)), int(np.ceil(box[3] / scale_c + bc0))
        if self.flipped:
            col0, col1 = self.original_shape[1] - col1, self.original_shape[1] - col0
        return (row0, col0, row1, col1)

    def to_original(self, heatmap: np.ndarray | torch.Tensor) -> np.ndarray:
        """A (H, W) map at model resolution drawn back at the original image's size (zeros outside the crop)."""
        heatmap = heatmap.detach().cpu().numpy() if isinstance(heatmap, torch.Tensor) else np.asarray(heatmap)
        if heatmap.shape != self.size:
            raise ConfigError(f"Heat map is {heatmap.shape}, expected the model size {self.size}.")
        row0, col0, row1, col1 = self.crop_box
        restored = resize(heatmap, (row1 - row0, col1 - col0)).numpy()
        rows, cols = self.original_shape
        out = crop(restored, (-row0, -col0, rows - row0, cols - col0))
        return out[:, ::-1].copy() if self.flipped else out


def preprocess(
    image: Mammogram | np.ndarray,
    size: tuple[int, int] | str = HALF_SIZE,
    mode: str = "canonical",
    clear_background: bool = True,
) -> Preprocessed:
    """A model input of ``size`` in ``mode`` (see the module docstring), and how it was made."""
    if mode not in MODES:
        raise ConfigError(f"Preprocessing mode {mode!r} is unknown; use one of {MODES}.")
    size = parse_size(size)
    pixels = image.pixels if isinstance(image, Mammogram) else np.asarray(image, dtype=np.float32)
    mask = breast_mask(pixels)
    if mode == "nyu_gmic":  # their pipeline clears nothing and pads with black
        clear_background = False
    if clear_background:
        shown, background = clear_outside(pixels, mask)
    else:
        shown = pixels
        background = float(pixels[~mask].mean()) if (~mask).any() and mode != "nyu_gmic" else float(pixels.min())
    flipped = False
    if mode == "canonical":
        shown, mask, flipped = orient(shown, mask)
        box = crop_box(mask, size)
    elif mode == "nyu_gmic":
        shown, mask, flipped = orient(shown, mask, _laterality(image))
        box = nyu_box(mask, image.meta.view if isinstance(image, Mammogram) else "")
    else:
        box = letterbox_box(pixels.shape, size)
    tensor = normalise(resize(crop(shown, box, fill=background), size), nyu=mode == "nyu_gmic")
    model_mask = resize(crop(mask.astype(np.float32), box), size).numpy() > 0.5
    return Preprocessed(
        tensor=tensor[None].contiguous(),
        mask=model_mask,
        flipped=flipped,
        crop_box=box,
        original_shape=tuple(pixels.shape),
        mode=mode,
        cleared=clear_background,
    )
