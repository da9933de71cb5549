"""Per-image ERF gradients on disk, so that a second run over the same images is nearly free.

An entry is one image's signed input gradient (an :class:`ImageGradient`: the values inside its
window, its place, the output position and the breast mask), keyed by the sha256 of the model's
weights, the image (file and preprocessing, or its pixels), the position and the stage. The
reduction is applied after reading, so one entry serves mean, mean_abs and positive alike.
Entries are written atomically; a corrupt entry is recomputed.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch
from torch import nn

from hct.explain.erf.engine import ImageGradient, image_and_mask
from hct.explain.options import default_cache_dir
from hct.io import atomic_write

# Bump when what an entry holds, or how a gradient is computed, changes.
CACHE_VERSION = 1


def model_digest(model: nn.Module) -> str:
    """sha256 of the model's class, configuration and every tensor of its state dict (weights and
    buffers such as BatchNorm statistics and the Performer's projection)."""
    digest = hashlib.sha256(f"{type(model).__name__}|{getattr(model, 'config', '')}".encode())
    for name, tensor in sorted(model.state_dict().items()):
        digest.update(f"{name}|{tensor.dtype}|{tuple(tensor.shape)}".encode())
        digest.update(tensor.detach().cpu().contiguous().reshape(-1).view(torch.uint8).numpy().tobytes())
    return digest.hexdigest()


def image_keys(images: Sequence) -> list[str]:
    """One key per image: ``images.keys`` when the sequence has them (files read on access, such as
    :class:`hct.data.PreprocessedFiles`, keyed without reading), else the sha256 of each image's
    tensor and mask."""
    keys = getattr(images, "keys", None)
    if keys is not None:
        return list(keys)
    out = []
    for item in images:
        tensor, mask = image_and_mask(item)
        digest = hashlib.sha256(f"{tuple(tensor.shape)}|{tensor.dtype}".encode())
        digest.update(tensor.detach().cpu().contiguous().numpy().tobytes())
        if mask is not None:
            digest.update(np.packbits(mask).tobytes())
        out.append(digest.hexdigest())
    return out


class GradientCache:
    """A folder of ``.npz`` entries, one per (model, image, position, stage)."""

    def __init__(self, folder: str | os.PathLike | None = None) -> None:
        self.folder = Path(folder) if folder is not None else default_cache_dir()

    def keys(self, model: nn.Module, images: Sequence, target: str) -> list[str]:
        """The entry name of each image for ``model`` and ``target`` (position and stage, as text)."""
        digest = model_digest(model)
        return [
            hashlib.sha256(f"v{CACHE_VERSION}|{digest}|{image}|{target}".encode()).hexdigest()
            for image in image_keys(images)
        ]

    def _path(self, key: str) -> Path:
        return self.folder / key[:2] / f"{key}.npz"

    def contains(self, key: str) -> bool:
        return self._path(key).is_file()

    def load(self, key: str) -> ImageGradient | None:
        """The entry, or ``None`` when absent or unreadable."""
        path = self._path(key)
        if not path.is_file():
            return None
        try:
            with np.load(path) as entry:
                shape = tuple(int(v) for v in entry["shape"])
                mask = None
                if entry["mask"].size:
                    mask = np.unpackbits(entry["mask"], count=shape[0] * shape[1]).reshape(shape).astype(bool)
                return ImageGradient(
                    values=entry["values"],
                    offset=tuple(int(v) for v in entry["offset"]),
                    shape=shape,
                    position=tuple(int(v) for v in entry["position"]),
                    feature_shape=tuple(int(v) for v in entry["feature_shape"]),
                    input_centre=tuple(float(v) for v in entry["input_centre"]),
                    mask=mask,
                )
        except (OSError, KeyError, ValueError):
            return None

    def save(self, key: str, gradient: ImageGradient) -> None:
        """Write one entry atomically (a reader never sees half of it)."""
        mask = np.packbits(gradient.mask) if gradient.mask is not None else np.zeros(0, np.uint8)
        atomic_write(
            self._path(key),
            lambda tmp: np.savez(
                tmp,
                values=gradient.values,
                offset=np.array(gradient.offset),
                shape=np.array(gradient.shape),
                position=np.array(gradient.position),
                feature_shape=np.array(gradient.feature_shape),
                input_centre=np.array(gradient.input_centre),
                mask=mask,
            ),
        )
