"""Patch sampling for pretraining: positives centred on malignant boxes, negatives in breast tissue."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from hct.data.cache import load_preprocessed
from hct.data.preprocess import FULL_SIZE, parse_size
from hct.data.records import ImageRecord


@dataclass(frozen=True)
class Patch:
    """A patch of a record's preprocessed image: its centre (row, col) in model-input pixels."""

    record: ImageRecord
    centre: tuple[int, int]
    label: int


def sample_patches(
    records: list[ImageRecord],
    image_size: tuple[int, int] | str = FULL_SIZE,
    negatives_per_image: int = 4,
    jitter: int = 32,
    seed: int = 0,
    cache_dir: str | Path | None = None,
) -> list[Patch]:
    """Positive patches centred (± ``jitter`` pixels) on each malignant box of malignant images, and
    ``negatives_per_image`` patches centred at random breast pixels of each non-malignant image.
    Coordinates are in the preprocessed image at ``image_size``. Images of unknown label are skipped."""
    image_size = parse_size(image_size)
    rng = np.random.default_rng(seed)
    patches = []
    for record in records:
        if record.label not in (0, 1) or (record.label == 1 and not record.finding_boxes):
            continue
        prepared = load_preprocessed(record.path, image_size, cache_dir)
        if record.label == 1:
            for box in record.finding_boxes:
                row0, col0, row1, col1 = prepared.to_model(box)
                centre = np.array([(row0 + row1) / 2, (col0 + col1) / 2]) + rng.integers(-jitter, jitter + 1, 2)
                centre = np.clip(np.round(centre), 0, np.array(image_size) - 1).astype(int)
                patches.append(Patch(record, (int(centre[0]), int(centre[1])), 1))
        else:
            inside = np.flatnonzero(prepared.mask)
            if inside.size == 0:
                continue
            for index in rng.choice(inside, size=negatives_per_image, replace=inside.size < negatives_per_image):
                row, col = divmod(int(index), image_size[1])
                patches.append(Patch(record, (row, col), 0))
    return patches


def extract_patch(tensor: torch.Tensor, centre: tuple[int, int], patch_size: int) -> torch.Tensor:
    """The (C, p, p) window of a (C, H, W) tensor centred at ``centre``, zero-padded at the borders."""
    half = patch_size // 2
    row0, col0 = centre[0] - half, centre[1] - half
    height, width = tensor.shape[-2:]
    pad = (max(-col0, 0), max(col0 + patch_size - width, 0), max(-row0, 0), max(row0 + patch_size - height, 0))
    window = tensor[..., max(row0, 0):row0 + patch_size, max(col0, 0):col0 + patch_size]
    return F.pad(window, pad) if any(pad) else window.clone()
