"""Decode once: preprocessed images cached on disk, keyed by the file and the preprocessing."""

from __future__ import annotations

import hashlib
import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch

from hct.data.image.preprocess import PREPROCESSING_VERSION, Preprocessed, parse_size, preprocess
from hct.data.image.reading import read_mammogram
from hct.errors import ConfigError
from hct.io import atomic_write


def cache_key(path: str | Path, size: tuple[int, int], mode: str, clear_background: bool) -> str:
    """A key that changes when the file (path, mtime, byte size) or the preprocessing changes."""
    stat = os.stat(path)
    text = (
        f"{PREPROCESSING_VERSION}|{Path(path).resolve()}|{stat.st_mtime_ns}|{stat.st_size}|{size}|{mode}|"
        f"{clear_background}"
    )
    return hashlib.sha256(text.encode()).hexdigest()[:32]


def load_preprocessed(
    path: str | Path,
    size: tuple[int, int] | str,
    cache_dir: str | Path | None = None,
    mode: str = "canonical",
    clear_background: bool = True,
) -> Preprocessed:
    """``preprocess(read_mammogram(path), size, mode, clear_background)``, read from / written to
    ``cache_dir`` when given."""
    size = parse_size(size)
    if cache_dir is None:
        return preprocess(read_mammogram(path), size, mode, clear_background)
    file = Path(cache_dir) / f"{cache_key(path, size, mode, clear_background)}.npz"
    if file.is_file():
        with np.load(file) as saved:
            return Preprocessed(
                tensor=torch.from_numpy(saved["tensor"]),
                mask=saved["mask"],
                flipped=bool(saved["flipped"]),
                crop_box=tuple(int(v) for v in saved["crop_box"]),
                original_shape=tuple(int(v) for v in saved["original_shape"]),
                mode=mode,
                cleared=clear_background,
            )
    result = preprocess(read_mammogram(path), size, mode, clear_background)
    atomic_write(
        file,
        lambda tmp: np.savez(
            tmp,
            tensor=result.tensor.numpy(),
            mask=result.mask,
            flipped=result.flipped,
            crop_box=np.array(result.crop_box),
            original_shape=np.array(result.original_shape),
        ),
    )
    return result


class PreprocessedFiles(Sequence):
    """Image files preprocessed when accessed (:func:`load_preprocessed`), so only what is in use is
    in memory; ``keys`` name each file and its preprocessing without reading it (see :func:`cache_key`)."""

    def __init__(
        self,
        paths: Sequence[str | Path],
        size: tuple[int, int] | str,
        mode: str = "canonical",
        clear_background: bool = True,
        cache_dir: str | Path | None = None,
    ) -> None:
        self.paths, self.size, self.mode = [str(p) for p in paths], parse_size(size), mode
        self.clear_background, self.cache_dir = clear_background, cache_dir

    def __len__(self) -> int:
        return len(self.paths)

    def __getitem__(self, index: int) -> Preprocessed:
        return load_preprocessed(self.paths[index], self.size, self.cache_dir, self.mode, self.clear_background)

    @property
    def keys(self) -> list[str]:
        missing = [p for p in self.paths if not os.path.isfile(p)]
        if missing:
            raise ConfigError(
                f"{len(missing)} image files do not exist, e.g. {missing[0]}; check the manifest or folder"
            )
        return [cache_key(p, self.size, self.mode, self.clear_background) for p in self.paths]
