"""Decode once: preprocessed images cached on disk, keyed by file path, mtime, size and parameters."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import numpy as np
import torch

from hct.data.preprocess import Preprocessed, parse_size, preprocess
from hct.data.reading import read_mammogram

CACHE_VERSION = "1"


def cache_key(path: str | Path, size: tuple[int, int], chest_wall: str) -> str:
    """A key that changes when the file (path, mtime, byte size) or the preprocessing changes."""
    stat = os.stat(path)
    text = f"{CACHE_VERSION}|{Path(path).resolve()}|{stat.st_mtime_ns}|{stat.st_size}|{size}|{chest_wall}"
    return hashlib.sha256(text.encode()).hexdigest()[:32]


def load_preprocessed(path: str | Path, size: tuple[int, int] | str, cache_dir: str | Path | None = None,
                      chest_wall: str = "left") -> Preprocessed:
    """``preprocess(read_mammogram(path), size)``, read from / written to ``cache_dir`` when given."""
    size = parse_size(size)
    if cache_dir is None:
        return preprocess(read_mammogram(path), size, chest_wall)
    file = Path(cache_dir) / f"{cache_key(path, size, chest_wall)}.npz"
    if file.is_file():
        with np.load(file) as saved:
            return Preprocessed(tensor=torch.from_numpy(saved["tensor"]), mask=saved["mask"],
                                flipped=bool(saved["flipped"]), crop_box=tuple(int(v) for v in saved["crop_box"]),
                                original_shape=tuple(int(v) for v in saved["original_shape"]))
    result = preprocess(read_mammogram(path), size, chest_wall)
    file.parent.mkdir(parents=True, exist_ok=True)
    partial = file.with_suffix(f".{os.getpid()}.tmp.npz")
    np.savez(partial, tensor=result.tensor.numpy(), mask=result.mask, flipped=result.flipped,
             crop_box=np.array(result.crop_box), original_shape=np.array(result.original_shape))
    os.replace(partial, file)
    return result
