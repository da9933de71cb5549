"""Training data held in memory: every preprocessed image of a manifest in one float16 tensor.

A phantom or a research subset is small enough to decode once (through :func:`hct.data.load_preprocessed`
and its disk cache) and keep on the training device, so no loader can starve the GPU. Patches are
cut from this bank on the device: positives centred (with jitter) on a malignant finding's box,
negatives centred on a random breast pixel of a non-malignant image, fresh positions every epoch.

Randomness is keyed, never drawn from a running stream: the epoch's order and patch positions
come from a generator seeded by ``(seed, epoch)``, and each micro-batch's augmentation from
``(seed, epoch, step, micro)``. A resumed or multi-process run therefore draws exactly what an
unbroken single-process run draws.
"""

from __future__ import annotations

import concurrent.futures
import hashlib
import multiprocessing
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from hct.data import load_preprocessed, read_manifest
from hct.data.image.preprocess import PREPROCESSING_VERSION
from hct.data.records import ImageRecord
from hct.errors import ConfigError
from hct.io import atomic_write

BANK_VERSION = "2"
CANDIDATE_GRID = 8  # negative-patch centres are breast pixels on this grid (model-input pixels)


def random_key(*parts: int) -> int:
    """A 63-bit seed derived from integers (seed, epoch, step, ...), stable across runs and machines."""
    return int(np.random.SeedSequence([int(p) + 2 for p in parts]).generate_state(1, np.uint64)[0] >> np.uint64(1))


def augment(batch: torch.Tensor, key: int, flips: bool = True, noise_std: float = 0.05) -> torch.Tensor:
    """The paper's augmentation of a ``(B, C, H, W)`` batch: random horizontal/vertical flips and Gaussian
    noise (std uniform in [0, noise_std]) per sample, drawn on the batch's device from a generator seeded by
    ``key`` (:func:`random_key`)."""
    generator = torch.Generator(device=batch.device).manual_seed(key)
    draws = torch.rand(batch.shape[0], 3, generator=generator, device=batch.device)
    if flips:
        batch = torch.where((draws[:, 0] < 0.5).view(-1, 1, 1, 1), batch.flip(-1), batch)
        batch = torch.where((draws[:, 1] < 0.5).view(-1, 1, 1, 1), batch.flip(-2), batch)
    if noise_std > 0:
        noise = torch.randn(batch.shape, generator=generator, device=batch.device, dtype=batch.dtype)
        batch = batch + noise * (draws[:, 2] * noise_std).view(-1, 1, 1, 1)
    return batch


@dataclass
class ImageBank:
    """Preprocessed images of one manifest at one size, with what patch sampling needs."""

    images: torch.Tensor  # (N, 1, H, W) float16, zero mean unit std per image
    labels: torch.Tensor  # (N,) int64: 1 malignant, 0 not, -1 unknown
    fill: torch.Tensor  # (N,) float32: the background value, used to pad patches
    boxes: torch.Tensor  # (N, K, 4) float32 finding boxes in model pixels (row0, col0, row1, col1)
    box_counts: torch.Tensor  # (N,) int64
    candidates: torch.Tensor  # (M, 2) int64 breast pixels (row, col) of all images, concatenated
    candidate_offsets: torch.Tensor  # (N + 1,) int64: image i's candidates are [off[i], off[i+1])
    image_ids: list[str]
    splits: list[str]

    @property
    def size(self) -> tuple[int, int]:
        return tuple(self.images.shape[-2:])  # type: ignore[return-value]

    def indices(self, split: str) -> torch.Tensor:
        """Images of ``split`` with a known label."""
        labels = self.labels.tolist()
        return torch.tensor([i for i, s in enumerate(self.splits) if s == split and labels[i] >= 0], dtype=torch.long)

    def patch_indices(self, split: str) -> torch.Tensor:
        """Images of ``split`` that yield a patch: malignant with a box, or non-malignant with breast pixels."""
        labels, counts, offsets = self.labels.tolist(), self.box_counts.tolist(), self.candidate_offsets.tolist()
        keep = []
        for i in self.indices(split).tolist():
            if (labels[i] == 1 and counts[i] > 0) or (labels[i] == 0 and offsets[i + 1] > offsets[i]):
                keep.append(i)
        return torch.tensor(keep, dtype=torch.long)

    def to(self, device: torch.device) -> "ImageBank":
        moved = {k: (v.to(device) if isinstance(v, torch.Tensor) else v) for k, v in self.__dict__.items()}
        return ImageBank(**moved)

    def patch_centres(self, items: torch.Tensor, generator: torch.Generator, jitter: int) -> torch.Tensor:
        """(len(items), 2) centres: a jittered malignant box centre, or a random breast pixel."""
        items = items.cpu()
        draws = torch.rand(len(items), 3, generator=generator)
        centres = torch.empty(len(items), 2, dtype=torch.long)
        boxes, counts, labels = self.boxes.cpu(), self.box_counts.cpu(), self.labels.tolist()
        offsets, candidates = self.candidate_offsets.cpu(), self.candidates.cpu()
        for row, image in enumerate(items.tolist()):
            u = draws[row]
            if labels[image] == 1:
                box = boxes[image, min(int(u[0] * counts[image]), int(counts[image]) - 1)]
                centre = torch.stack([(box[0] + box[2]) / 2, (box[1] + box[3]) / 2])
                centre = centre + (u[1:] * 2 - 1) * jitter
            else:
                low, high = int(offsets[image]), int(offsets[image + 1])
                centre = candidates[low + min(int(u[0] * (high - low)), high - low - 1)].float()
                centre = centre + (u[1:] - 0.5) * CANDIDATE_GRID
            centres[row] = centre.round().long()
        return centres

    def crop(self, items: torch.Tensor, centres: torch.Tensor, patch_size: int) -> torch.Tensor:
        """(B, 1, p, p) float32 patches centred at ``centres``, padded with each image's background."""
        height, width = self.size
        out = self.fill[items].float().view(-1, 1, 1, 1).expand(-1, 1, patch_size, patch_size).clone()
        half = patch_size // 2
        for row, (image, (cr, cc)) in enumerate(zip(items.tolist(), centres.tolist())):
            r0, c0 = cr - half, cc - half
            sr0, sc0 = max(r0, 0), max(c0, 0)
            sr1, sc1 = min(r0 + patch_size, height), min(c0 + patch_size, width)
            if sr1 > sr0 and sc1 > sc0:
                out[row, :, sr0 - r0 : sr1 - r0, sc0 - c0 : sc1 - c0] = self.images[image, :, sr0:sr1, sc0:sc1]
        return out


def _prepare(
    args: tuple[ImageRecord, tuple[int, int], str | None, bool],
) -> tuple[np.ndarray, float, np.ndarray, np.ndarray]:
    record, size, cache_dir, clear_background = args
    prepared = load_preprocessed(record.path, size, cache_dir, clear_background=clear_background)
    tensor = prepared.tensor[0]
    mask = prepared.mask
    fill = float(tensor[~torch.from_numpy(mask)].median()) if (~mask).any() else float(tensor.min())
    boxes = np.array(
        [prepared.to_model(box) for box in record.finding_boxes] if record.label == 1 else [], dtype=np.float32
    ).reshape(-1, 4)
    grid = mask[CANDIDATE_GRID // 2 :: CANDIDATE_GRID, CANDIDATE_GRID // 2 :: CANDIDATE_GRID]
    candidates = np.argwhere(grid) * CANDIDATE_GRID + CANDIDATE_GRID // 2
    return tensor.numpy().astype(np.float16), fill, boxes, candidates.astype(np.int64)


def _manifest_key(manifest: Path, size: tuple[int, int], clear_background: bool) -> str:
    digest = hashlib.sha256(manifest.read_bytes())
    digest.update(f"{BANK_VERSION}|{PREPROCESSING_VERSION}|{manifest.resolve()}|{size}|{clear_background}".encode())
    return digest.hexdigest()[:24]


def build_bank(
    records: list[ImageRecord],
    size: tuple[int, int],
    cache_dir: str | None = None,
    workers: int = 0,
    clear_background: bool = True,
) -> ImageBank:
    """Decode and preprocess ``records`` at ``size`` (canonical mode; ``workers`` processes) into an
    :class:`ImageBank`."""
    if not records:
        raise ConfigError("The manifest lists no images.")
    tasks = [(record, tuple(size), cache_dir, clear_background) for record in records]
    if workers > 1:
        # spawn, not fork: preprocessing uses torch, and torch's thread pool does not survive a fork
        spawn = multiprocessing.get_context("spawn")
        with concurrent.futures.ProcessPoolExecutor(
            workers, mp_context=spawn, initializer=torch.set_num_threads, initargs=(1,)
        ) as pool:
            prepared = list(pool.map(_prepare, tasks, chunksize=max(1, len(tasks) // (4 * workers))))
    else:
        prepared = [_prepare(task) for task in tasks]
    most_boxes = max(1, max(len(p[2]) for p in prepared))
    boxes = torch.zeros(len(records), most_boxes, 4)
    for i, (_, _, found, _) in enumerate(prepared):
        boxes[i, : len(found)] = torch.from_numpy(found)
    counts = [len(p[3]) for p in prepared]
    return ImageBank(
        images=torch.from_numpy(np.stack([p[0] for p in prepared]))[:, None],
        labels=torch.tensor([r.label for r in records], dtype=torch.long),
        fill=torch.tensor([p[1] for p in prepared], dtype=torch.float32),
        boxes=boxes,
        box_counts=torch.tensor([len(p[2]) for p in prepared], dtype=torch.long),
        candidates=torch.from_numpy(np.concatenate([p[3] for p in prepared])).reshape(-1, 2),
        candidate_offsets=torch.tensor(np.concatenate([[0], np.cumsum(counts)]), dtype=torch.long),
        image_ids=[r.image_id for r in records],
        splits=[r.split for r in records],
    )


def load_bank(
    manifest: str | Path,
    size: tuple[int, int],
    cache_dir: str | Path | None = None,
    workers: int = 0,
    clear_background: bool = True,
) -> ImageBank:
    """The bank of ``manifest`` at ``size``, read from ``cache_dir`` (default: ``cache/`` next to the
    manifest) when an up-to-date copy is there, else built and saved there atomically."""
    manifest = Path(manifest)
    cache = Path(cache_dir) if cache_dir is not None else manifest.parent / "cache"
    file = cache / f"bank-{_manifest_key(manifest, size, clear_background)}.pt"
    if file.is_file():
        try:
            return ImageBank(**torch.load(file, weights_only=True))
        except Exception as err:  # noqa: BLE001 - truncated, corrupt or of an older layout: the cache is rebuilt
            warnings.warn(
                f"the training image cache {file} is damaged ({type(err).__name__}: {str(err)[:120]}); "
                "it is being rebuilt from the manifest's images.",
                RuntimeWarning,
                stacklevel=2,
            )
    bank = build_bank(read_manifest(manifest), size, str(cache), workers, clear_background)
    atomic_write(file, lambda tmp: torch.save(dict(bank.__dict__), tmp))
    return bank
