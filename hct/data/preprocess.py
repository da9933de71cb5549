"""Preprocessing a mammogram for a model: orient, mask, crop, resize, normalise; and the way back.

Each step is a plain function; :func:`preprocess` composes them and records what it did, so that a
heat map at model resolution can be drawn on the original image (:meth:`Preprocessed.to_original`)
and a finding box on the model input (:meth:`Preprocessed.to_model`).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from scipy import ndimage

from hct.data.reading import Mammogram
from hct.data.records import Box
from hct.errors import ConfigError

FULL_SIZE = (3328, 2560)
HALF_SIZE = (1664, 1280)
CHEST_WALL_SIDES = ("left", "right")


def otsu_threshold(values: np.ndarray, bins: int = 256) -> float:
    """Otsu's threshold: the grey level that maximises the between-class variance."""
    values = np.asarray(values, dtype=np.float64).ravel()
    lo, hi = float(values.min()), float(values.max())
    if hi <= lo:
        return lo
    hist, edges = np.histogram(values, bins=bins, range=(lo, hi))
    centres = (edges[:-1] + edges[1:]) / 2
    weight0 = np.cumsum(hist)
    weight1 = weight0[-1] - weight0
    sum0 = np.cumsum(hist * centres)
    mean0 = sum0 / np.maximum(weight0, 1)
    mean1 = (sum0[-1] - sum0) / np.maximum(weight1, 1)
    between = weight0 * weight1 * (mean0 - mean1) ** 2
    return float(edges[int(np.argmax(between[:-1])) + 1])


def breast_mask(pixels: np.ndarray, work_side: int = 512) -> np.ndarray:
    """Boolean breast mask: Otsu foreground, largest connected component, holes filled.

    Computed on a strided copy at most ``work_side`` pixels a side, then scaled back (nearest).
    """
    rows, cols = pixels.shape
    step = max(1, int(np.ceil(max(rows, cols) / work_side)))
    small = np.asarray(pixels[::step, ::step], dtype=np.float32)
    foreground = small > otsu_threshold(small)
    labels, count = ndimage.label(foreground)
    if count == 0:
        return np.zeros((rows, cols), dtype=bool)
    sizes = np.bincount(labels.ravel())[1:]
    largest = ndimage.binary_fill_holes(labels == int(np.argmax(sizes)) + 1)
    row_index = np.minimum(np.arange(rows) // step, largest.shape[0] - 1)
    col_index = np.minimum(np.arange(cols) // step, largest.shape[1] - 1)
    return largest[np.ix_(row_index, col_index)]


def breast_side(mask: np.ndarray) -> str:
    """'left' or 'right': the image side holding most of the breast (where the chest wall is)."""
    half = mask.shape[1] // 2
    return "left" if mask[:, :half].sum() >= mask[:, half:].sum() else "right"


def orient(pixels: np.ndarray, mask: np.ndarray, chest_wall: str = "left") -> tuple[np.ndarray, np.ndarray, bool]:
    """Flip left-right so the chest wall is on ``chest_wall``; returns (pixels, mask, flipped)."""
    if chest_wall not in CHEST_WALL_SIDES:
        raise ConfigError(f"chest_wall must be one of {CHEST_WALL_SIDES}, not {chest_wall!r}.")
    if breast_side(mask) == chest_wall:
        return pixels, mask, False
    return pixels[:, ::-1], mask[:, ::-1], True


def crop_box(mask: np.ndarray, size: tuple[int, int], chest_wall: str = "left") -> Box:
    """The breast's bounding box grown to the aspect ratio of ``size`` (may extend past the image).

    Rows grow symmetrically; columns grow away from the chest wall. An empty mask gives the image.
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
        new_width = int(round(height / aspect))
        if chest_wall == "left":
            col1 = col0 + new_width
        else:
            col0 = col1 - new_width
    return (row0, col0, row1, col1)


def crop(array: np.ndarray, box: Box, fill: float = 0.0) -> np.ndarray:
    """The part of ``array`` inside ``box``; where the box leaves the image it holds ``fill``."""
    row0, col0, row1, col1 = box
    out = np.full((row1 - row0, col1 - col0), fill, dtype=array.dtype)
    r0, c0 = max(row0, 0), max(col0, 0)
    r1, c1 = min(row1, array.shape[0]), min(col1, array.shape[1])
    if r1 > r0 and c1 > c0:
        out[r0 - row0:r1 - row0, c0 - col0:c1 - col0] = array[r0:r1, c0:c1]
    return out


def resize(array: np.ndarray, size: tuple[int, int]) -> torch.Tensor:
    """Bilinear resize with antialiasing (float32 tensor of shape ``size``)."""
    tensor = torch.from_numpy(np.ascontiguousarray(array, dtype=np.float32))[None, None]
    if tuple(tensor.shape[-2:]) == tuple(size):
        return tensor[0, 0]
    return F.interpolate(tensor, size=tuple(size), mode="bilinear", antialias=True, align_corners=False)[0, 0]


def normalise(tensor: torch.Tensor) -> torch.Tensor:
    """Zero mean, unit standard deviation over the whole image (as GMIC does)."""
    std = tensor.std()
    centred = tensor - tensor.mean()
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
    chest_wall: str = "left",
) -> Preprocessed:
    """Orient (chest wall on ``chest_wall``), mask, crop to the breast, resize to ``size``, normalise."""
    size = parse_size(size)
    pixels = image.pixels if isinstance(image, Mammogram) else np.asarray(image, dtype=np.float32)
    mask = breast_mask(pixels)
    oriented, oriented_mask, flipped = orient(pixels, mask, chest_wall)
    box = crop_box(oriented_mask, size, chest_wall)
    background = float(oriented[~oriented_mask].mean()) if (~oriented_mask).any() else float(oriented.min())
    tensor = normalise(resize(crop(oriented, box, fill=background), size))
    model_mask = resize(crop(oriented_mask.astype(np.float32), box), size).numpy() > 0.5
    return Preprocessed(tensor=tensor[None].contiguous(), mask=model_mask, flipped=flipped, crop_box=box,
                        original_shape=tuple(pixels.shape))
