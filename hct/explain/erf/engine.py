"""The ERF's plumbing: each image's input gradient of one output position, computed in batches,
through the theoretical receptive field only where it is bounded, read from and written to an
on-disk cache, shared out over ``torchrun`` ranks, with progress and cancel callbacks.

What is differentiated (model, stage, position) is the caller's; :class:`ERFEngine` only decides
how. Every path gives the same per-image gradients (to float32 rounding for the window), so the
maths in :mod:`hct.explain.erf.compute` never depends on how they were obtained.
"""

from __future__ import annotations

import concurrent.futures
import contextlib
import multiprocessing
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field

import numpy as np
import torch
from torch import nn

from hct.errors import ComputationCancelled, ConfigError
from hct.explain.erf.receptive_field import OUTPUT_STAGE, Geometry, stage_features, stage_geometry
from hct.explain.inputs import eval_mode
from hct.runtime.distributed import DistContext, gather_to_main, round_ranges

_CUDA_MAX_BATCH = 32


@dataclass
class ImageGradient:
    """One image's input gradient of one output position, summed over input channels.

    ``values`` covers input rows ``offset[0]:offset[0] + h`` and columns ``offset[1]:offset[1] + w``
    of an ``shape`` input (``(h, w) = values.shape``); the gradient is zero elsewhere. ``position``
    is the output position ``(row, col)`` on a ``feature_shape`` map, ``input_centre`` its centre in
    input pixels; ``mask`` the image's breast mask at input resolution, if known.
    """

    values: np.ndarray
    offset: tuple[int, int]
    shape: tuple[int, int]
    position: tuple[int, int]
    feature_shape: tuple[int, int]
    input_centre: tuple[float, float]
    mask: np.ndarray | None = None

    @property
    def window(self) -> tuple[slice, slice]:
        """Where ``values`` lie in the input."""
        (row, col), (h, w) = self.offset, self.values.shape
        return slice(row, row + h), slice(col, col + w)

    def full(self) -> np.ndarray:
        """The gradient over the whole input ``(H, W)``."""
        out = np.zeros(self.shape, np.float32)
        out[self.window] = self.values
        return out


def output_position(feature_shape: tuple[int, int], position: str | tuple[int, int] = "centre") -> tuple[int, int]:
    """The output position ``(row, col)``: ``"centre"`` (``(h // 2, w // 2)``) or a given pair."""
    height, width = feature_shape
    if isinstance(position, str):
        if position not in ("centre", "center"):
            raise ConfigError(f"position must be 'centre' or (row, col), got {position!r}")
        return height // 2, width // 2
    row, col = (int(v) for v in position)
    if not (0 <= row < height and 0 <= col < width):
        raise ConfigError(
            f"output position {(row, col)} is outside the {height}x{width} output feature map; "
            f"use 0 <= row < {height}, 0 <= col < {width}"
        )
    return row, col


def input_gradients(
    feature_fn: Callable[[torch.Tensor], torch.Tensor],
    x: torch.Tensor,
    position: str | tuple[int, int] = "centre",
) -> tuple[torch.Tensor, tuple[int, int], tuple[int, int]]:
    """Each image's input gradient of the output feature map's ``position`` (all channels summed).

    ``x`` is ``(B, C, H, W)``; returns ``((B, C, H, W) gradients, (row, col), feature map (h, w))``.
    One backward pass: the selected outputs are summed over the batch and differentiated w.r.t.
    ``x`` only, so no parameter gradient is computed. On CPU the input is
    restrided channels-last, so the convolutions use their faster kernels (same maps to rounding).
    """
    x = x.detach()
    if x.device.type == "cpu" and x.dim() == 4:
        x = x.to(memory_format=torch.channels_last)  # restrides even a 1-channel input
    x.requires_grad_(True)
    with torch.enable_grad():
        features = feature_fn(x)
        if features.dim() != 4:
            raise ConfigError(f"the feature function must return (B, C, h, w); got shape {tuple(features.shape)}")
        row, col = output_position(features.shape[-2:], position)
        (grad,) = torch.autograd.grad(features[:, :, row, col].sum(), x)
    return grad.contiguous(), (row, col), tuple(features.shape[-2:])


@dataclass(frozen=True)
class Target:
    """What is differentiated: ``fn`` maps ``(B, C, H, W)`` to a ``(B, C', h, w)`` feature map, whose
    ``position`` is back-propagated; ``geometry`` (when known) gives its receptive field."""

    fn: Callable[[torch.Tensor], torch.Tensor]
    position: str | tuple[int, int]
    stage: int | None
    geometry: Geometry | None

    @classmethod
    def of(
        cls,
        model: nn.Module,
        position: str | tuple[int, int] = "centre",
        stage: int | None = None,
        feature_fn: Callable[[torch.Tensor], torch.Tensor] | None = None,
    ) -> "Target":
        """Stage ``stage`` of a ``HighResNet`` (default the output feature map), or ``feature_fn``."""
        if feature_fn is not None:
            if stage is not None:
                raise ConfigError("give a stage or a feature_fn, not both")
            return cls(feature_fn, position, None, None)
        if hasattr(model, "stages"):
            stage = OUTPUT_STAGE if stage is None else stage
            return cls(stage_features(model, stage), position, stage, stage_geometry(model, stage))
        if stage is not None:
            raise ConfigError(f"a {type(model).__name__} has no stages; pass feature_fn instead of a stage")
        return cls(getattr(model, "forward_features", model), position, None, None)

    def cache_fields(self) -> str:
        position = self.position if isinstance(self.position, str) else ",".join(str(int(v)) for v in self.position)
        return f"position={position}|stage={self.stage}"


def image_and_mask(item) -> tuple[torch.Tensor, np.ndarray | None]:
    """A ``(C, H, W)`` tensor, or anything with ``.tensor`` (and ``.mask``) such as a ``Preprocessed``."""
    if isinstance(item, torch.Tensor):
        tensor, mask = item, None
    else:
        tensor, mask = getattr(item, "tensor", None), getattr(item, "mask", None)
        if not isinstance(tensor, torch.Tensor):
            raise ConfigError(f"an ERF image must be a (C, H, W) tensor or have a .tensor; got {type(item).__name__}")
    if tensor.dim() == 4 and tensor.shape[0] == 1:
        tensor = tensor[0]
    if tensor.dim() != 3:
        raise ConfigError(f"an ERF image must be (C, H, W); got shape {tuple(tensor.shape)}")
    return tensor, None if mask is None else np.asarray(mask, dtype=bool)


def _model_device(model: nn.Module) -> tuple[torch.device, torch.dtype]:
    for tensor in (*model.parameters(), *model.buffers()):
        if tensor.is_floating_point():
            return tensor.device, tensor.dtype
    return torch.device("cpu"), torch.float32


@dataclass
class ERFEngine:
    """How per-image input gradients are obtained; holds no maths.

    ``batch_size``: ``"auto"`` (1 on CPU, where a larger batch is not faster; on CUDA what 70% of
    free memory holds, at most 32) or an int. ``windowed``: back-propagate through the theoretical
    receptive field only, where it is bounded (GMIC; any stage 1-3), instead of the whole image.
    ``cache``: a :class:`hct.explain.erf.cache.GradientCache` (``keys``, ``load``, ``save``).
    ``context``: this process's rank under torchrun (images are shared out in contiguous ranges;
    rank 0 receives every result, in image order). ``progress(done, total)`` is called on rank 0
    after each batch; ``cancel()`` returning True raises :class:`ComputationCancelled` before the next.
    ``workers`` processes read (decode and preprocess) the next batch's images while this one is
    computed; 0 reads them in this process, when needed. Use workers only with images read from
    files (such as ``hct.data.PreprocessedFiles``): each worker is sent the image sequence.
    """

    batch_size: int | str = "auto"
    windowed: bool = True
    cache: object | None = None
    context: DistContext = field(default_factory=DistContext)
    progress: Callable[[int, int], None] | None = None
    cancel: Callable[[], bool] | None = None
    workers: int = 0

    def __post_init__(self) -> None:
        if self.batch_size != "auto" and (not isinstance(self.batch_size, int) or self.batch_size < 1):
            raise ConfigError(f"batch_size must be 'auto' or a positive int, got {self.batch_size!r}")

    def gradients(
        self,
        models: Sequence[nn.Module],
        targets: Sequence[Target],
        images: Sequence,
        indices: Sequence[int],
        masks: Sequence[np.ndarray] | None = None,
    ) -> Iterator[list[ImageGradient]]:
        """For each image ``images[i]``, ``i`` in ``indices`` in that order: its gradient under each model
        (with that model's target). Each image is read once for all models, and not at all when the
        cache holds it for every model. Rank 0 receives them all; the other ranks yield nothing.
        ``masks`` override the images' own breast masks."""
        runners = [_Runner(m, t, self, images) for m, t in zip(models, targets)]
        per_rank = 1 if self.batch_size == "auto" else self.batch_size
        done, total, world, rank = 0, len(indices), self.context.world, self.context.rank
        with contextlib.ExitStack() as stack, _Reader(images, masks, self.workers) as reader:
            for model in models:
                stack.enter_context(eval_mode(model))
            while done < total:
                if self.cancel is not None and self.cancel():
                    raise ComputationCancelled(f"ERF cancelled after {done} of {total} images")
                stop = min(total, done + per_rank * world)
                mine = [indices[j] for j in round_ranges(done, stop, world)[rank]]
                upcoming = [indices[j] for j in round_ranges(stop, min(total, stop + per_rank * world), world)[rank]]
                reader.prefetch([i for i in upcoming if not all(r.has(i) for r in runners)])
                found = [runner.cached(mine) for runner in runners]
                reader.read(sorted({i for f in found for i in mine if f[i] is None}))
                for runner, f in zip(runners, found):
                    runner.compute(f, reader)
                measured = [runner.fitting_batch_size() for runner in runners if runner.bytes_per_image]
                if self.batch_size == "auto" and per_rank == 1 and measured:
                    per_rank = min(measured)
                gathered = gather_to_main(self.context, [[f[i] for f in found] for i in mine])
                done = stop
                if gathered is not None:
                    if self.progress is not None:
                        self.progress(done, total)
                    for part in gathered:
                        yield from part


def _read_item(images: Sequence, index: int):
    return images[index]


class _Reader:
    """Reads images (tensor and breast mask), ahead of need in ``workers`` processes when asked,
    and checks they all have one shape."""

    def __init__(self, images: Sequence, masks: Sequence[np.ndarray] | None, workers: int = 0) -> None:
        self.images, self.masks, self.workers = images, masks, workers
        self.shape: tuple[int, ...] | None = None
        self.loaded: dict[int, tuple[torch.Tensor, np.ndarray | None]] = {}
        self.pending: dict[int, concurrent.futures.Future] = {}
        self.pool: concurrent.futures.Executor | None = None

    def __enter__(self) -> "_Reader":
        if self.workers > 0:
            methods = multiprocessing.get_all_start_methods()
            context = multiprocessing.get_context("fork" if "fork" in methods else None)
            self.pool = concurrent.futures.ProcessPoolExecutor(
                self.workers, mp_context=context, initializer=torch.set_num_threads, initargs=(1,)
            )
        return self

    def __exit__(self, *exc) -> None:
        if self.pool is not None:
            self.pool.shutdown(cancel_futures=True)

    def prefetch(self, indices: list[int]) -> None:
        """Start reading ``indices`` in the worker processes (nothing without workers)."""
        if self.pool is not None:
            for i in indices:
                if i not in self.pending:
                    self.pending[i] = self.pool.submit(_read_item, self.images, i)

    def read(self, indices: list[int]) -> None:
        """Read ``indices`` (or take what was prefetched) into ``loaded``, replacing what it held."""
        self.loaded = {}
        for i in indices:
            future = self.pending.pop(i, None)
            tensor, mask = image_and_mask(future.result() if future is not None else self.images[i])
            if self.masks is not None:
                mask = np.asarray(self.masks[i], dtype=bool)
            self.shape = self.shape or tuple(tensor.shape)
            if tuple(tensor.shape) != self.shape:
                raise ConfigError(
                    f"image {i} has shape {tuple(tensor.shape)}, the first {self.shape}; "
                    "preprocess all images to one size"
                )
            self.loaded[i] = (tensor, mask)


class _Runner:
    """One model's gradients: cache first, then one backward pass per batch of what is missing."""

    def __init__(self, model: nn.Module, target: Target, engine: ERFEngine, images: Sequence) -> None:
        self.model, self.target, self.engine = model, target, engine
        self.device, self.dtype = _model_device(model)
        self.keys = engine.cache.keys(model, images, target.cache_fields()) if engine.cache is not None else None
        self.bytes_per_image = 0

    def has(self, index: int) -> bool:
        """Whether the cache holds image ``index`` (without reading it)."""
        return self.keys is not None and self.engine.cache.contains(self.keys[index])

    def cached(self, indices: list[int]) -> dict[int, ImageGradient | None]:
        if self.keys is None:
            return dict.fromkeys(indices)
        return {i: self.engine.cache.load(self.keys[i]) for i in indices}

    def compute(self, found: dict[int, ImageGradient | None], reader: _Reader) -> None:
        """Fill in the missing entries of ``found`` (and write them to the cache)."""
        missing = [i for i, g in found.items() if g is None]
        if not missing:
            return
        x = torch.stack([reader.loaded[i][0] for i in missing]).to(device=self.device, dtype=self.dtype)
        for i, gradient in zip(missing, self._backward(x, [reader.loaded[i][1] for i in missing])):
            found[i] = gradient
            if self.keys is not None:
                self.engine.cache.save(self.keys[i], gradient)

    def _backward(self, x: torch.Tensor, masks: list[np.ndarray | None]) -> list[ImageGradient]:
        height, width = x.shape[-2:]
        rows, cols, asked, position = self._window(height, width)
        measure = self.device.type == "cuda" and not self.bytes_per_image
        if measure:
            torch.cuda.reset_peak_memory_stats(self.device)
            base = torch.cuda.memory_allocated(self.device)
        grad, local, feature_shape = input_gradients(self.target.fn, x[:, :, rows, cols].contiguous(), asked)
        if measure:
            self.bytes_per_image = (torch.cuda.max_memory_allocated(self.device) - base) // len(x)
        geometry = self.target.geometry
        if geometry is None:
            position = local
            centre = (position[0] * height / feature_shape[0], position[1] * width / feature_shape[1])
        else:
            feature_shape = (geometry.output_size(height), geometry.output_size(width))
            centre = (geometry.centre(position[0]), geometry.centre(position[1]))
        values = grad.sum(dim=1).float().cpu().numpy()
        offset = (rows.start or 0, cols.start or 0)
        return [
            ImageGradient(values[b], offset, (height, width), position, feature_shape, centre, masks[b])
            for b in range(len(x))
        ]

    def _window(self, height: int, width: int) -> tuple[slice, slice, str | tuple[int, int], tuple[int, int] | None]:
        """The input window to back-propagate through, the position to ask of it (in its own
        coordinates) and the output position on the whole input (``None`` while unknown: no geometry)."""
        geometry = self.target.geometry
        if geometry is None:
            return slice(None), slice(None), self.target.position, None
        position = output_position((geometry.output_size(height), geometry.output_size(width)), self.target.position)
        if not (self.engine.windowed and geometry.bounded):
            return slice(None), slice(None), position, position
        (r0, r1), (c0, c1) = geometry.window(position[0], height), geometry.window(position[1], width)
        local = (position[0] - r0 // geometry.jump, position[1] - c0 // geometry.jump)
        return slice(r0, r1), slice(c0, c1), local, position

    def fitting_batch_size(self) -> int:
        """On CUDA, what 70% of free memory holds (at most 32) from the first batch's peak; else 1."""
        if self.device.type != "cuda" or not self.bytes_per_image:
            return 1
        free, _ = torch.cuda.mem_get_info(self.device)
        return max(1, min(_CUDA_MAX_BATCH, int(0.7 * free // self.bytes_per_image)))
