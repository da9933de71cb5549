"""Torch datasets of whole mammograms and of patches, augmentation, and a loader helper."""

from __future__ import annotations

from pathlib import Path

import torch
from torch.utils.data import DataLoader, Dataset

from hct.data.cache import load_preprocessed
from hct.data.patches import Patch, extract_patch
from hct.data.preprocess import FULL_SIZE, parse_size
from hct.data.records import ImageRecord


def augment(batch: torch.Tensor, key: int, flips: bool = True, noise_std: float = 0.05) -> torch.Tensor:
    """The paper's augmentation of a ``(B, C, H, W)`` batch: random horizontal/vertical flips and Gaussian noise (std uniform in [0, noise_std]) per sample,
    drawn on the batch's device from a generator seeded by ``key``."""
    generator = torch.Generator(device=batch.device).manual_seed(key)
    draws = torch.rand(batch.shape[0], 3, generator=generator, device=batch.device)
    if flips:
        batch = torch.where((draws[:, 0] < 0.5).view(-1, 1, 1, 1), batch.flip(-1), batch)
        batch = torch.where((draws[:, 1] < 0.5).view(-1, 1, 1, 1), batch.flip(-2), batch)
    if noise_std > 0:
        noise = torch.randn(batch.shape, generator=generator, device=batch.device, dtype=batch.dtype)
        batch = batch + noise * (draws[:, 2] * noise_std).view(-1, 1, 1, 1)
    return batch


def _augment_one(tensor: torch.Tensor) -> torch.Tensor:
    return augment(tensor[None], key=int(torch.randint(2**62, ()))).squeeze(0)


class MammogramDataset(Dataset):
    """Preprocessed whole images: item ``i`` is (tensor (1, H, W) float32, label int)."""

    def __init__(self, records: list[ImageRecord], size: tuple[int, int] | str,
                 cache_dir: str | Path | None = None, augment: bool = False):
        self.records, self.size, self.cache_dir, self.augment = list(records), parse_size(size), cache_dir, augment

    def __len__(self) -> int:
        return len(self.records)

    def __getitem__(self, index: int) -> tuple[torch.Tensor, int]:
        record = self.records[index]
        tensor = load_preprocessed(record.path, self.size, self.cache_dir).tensor
        return (_augment_one(tensor) if self.augment else tensor), record.label


class PatchDataset(Dataset):
    """Patches of preprocessed images at ``image_size``: item ``i`` is (tensor (1, p, p), label)."""

    def __init__(self, patches: list[Patch], image_size: tuple[int, int] | str = FULL_SIZE, patch_size: int = 512,
                 cache_dir: str | Path | None = None, augment: bool = False):
        self.patches, self.image_size, self.patch_size = list(patches), parse_size(image_size), patch_size
        self.cache_dir, self.augment = cache_dir, augment

    def __len__(self) -> int:
        return len(self.patches)

    def __getitem__(self, index: int) -> tuple[torch.Tensor, int]:
        patch = self.patches[index]
        tensor = load_preprocessed(patch.record.path, self.image_size, self.cache_dir).tensor
        window = extract_patch(tensor, patch.centre, self.patch_size)
        return (_augment_one(window) if self.augment else window), patch.label


def make_loader(dataset: Dataset, batch_size: int, shuffle: bool, workers: int = 2) -> DataLoader:
    """A DataLoader whose ``workers`` processes decode ahead (pinned memory when CUDA is present)."""
    return DataLoader(dataset, batch_size=batch_size, shuffle=shuffle, num_workers=workers,
                      persistent_workers=workers > 0, prefetch_factor=4 if workers > 0 else None,
                      pin_memory=torch.cuda.is_available())
