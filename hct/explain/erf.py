"""Effective receptive field (Luo et al., NeurIPS 2016), as computed in the paper (Sec. 4, Tab. 1).

For each image: eval mode, forward to the output feature map, gradient one at one output position
(all channels) and zero elsewhere, back-propagate to the input. The ERF is the mean of these input
gradients over N images. Only the input's gradient is asked of autograd, so no weight gradient is
ever computed, and one backward pass serves a whole batch (images are independent in eval mode).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
import torch
from torch import nn
from torchvision.ops import DeformConv2d

from hct.data.records import SIDE_NAMES
from hct.devices import disable_tf32
from hct.errors import ComputationCancelled, ConfigError

SUBSETS = ("all", *SIDE_NAMES.values())
REDUCTIONS = ("mean", "mean_abs")
_CUDA_MAX_BATCH = 32


@dataclass
class ERFResult:
    """An ERF and its aggregates, all at input resolution (``H x W`` image pixels).

    ``map`` is the mean over images of the per-image input gradient, signed (``reduction="mean"``,
    the paper's and Luo et al.'s choice) or of its absolute value (``"mean_abs"``).
    ``curve_over_columns`` is ``map`` summed over rows (one value per column: the paper's
    "across rows" curve); ``curve_over_rows`` is ``map`` summed over columns (one value per row:
    the paper's "across columns" curve). ``sqrt_*`` are the square roots of their absolute values.
    ``image_curves_over_*`` hold every image's curve, for spread bands (:func:`curve_band`);
    ``image_maps`` every image's map (``N x H x W`` float32), unless it was not kept.
    ``position`` is the output feature-map position ``(row, col)``, ``input_centre`` its centre in
    input pixels, ``stride`` input pixels per output position, ``mask`` the mean breast mask.
    """

    map: np.ndarray
    reduction: str
    curve_over_columns: np.ndarray
    curve_over_rows: np.ndarray
    image_curves_over_columns: np.ndarray
    image_curves_over_rows: np.ndarray
    position: tuple[int, int]
    input_centre: tuple[float, float]
    stride: tuple[float, float]
    model_name: str
    subset: str
    n: int
    indices: list[int] = field(default_factory=list)
    image_maps: np.ndarray | None = None
    mask: np.ndarray | None = None

    @property
    def sqrt_map(self) -> np.ndarray:
        return np.sqrt(np.abs(self.map))

    @property
    def sqrt_curve_over_columns(self) -> np.ndarray:
        return np.sqrt(np.abs(self.curve_over_columns))

    @property
    def sqrt_curve_over_rows(self) -> np.ndarray:
        return np.sqrt(np.abs(self.curve_over_rows))

    @property
    def shape(self) -> tuple[int, int]:
        return self.map.shape


def subset_laterality(subset: str) -> str | None:
    """The laterality (``'L'``/``'R'``) an ERF subset keeps; ``None`` for ``all``."""
    if subset not in SUBSETS:
        raise ConfigError(f"unknown ERF subset {subset!r}; choose one of {SUBSETS}")
    return next((side for side, name in SIDE_NAMES.items() if name == subset), None)


def select_subset(lateralities: Sequence[str] | None, subset: str, count: int) -> list[int]:
    """Indices of the images in ``subset`` (``all``, ``left`` or ``right`` breasts)."""
    if subset not in SUBSETS:
        raise ConfigError(f"unknown ERF subset {subset!r}; choose one of {SUBSETS}")
    if subset == "all":
        return list(range(count))
    if lateralities is None or len(lateralities) != count:
        raise ConfigError(f"subset {subset!r} needs one laterality ('L'/'R') per image; "
                          f"got {'none' if lateralities is None else len(lateralities)} for {count} images")
    wanted = subset_laterality(subset)
    chosen = [i for i, side in enumerate(lateralities) if str(side).upper()[:1] == wanted]
    if not chosen:
        raise ConfigError(f"no {subset} breast among the {count} images (lateralities: {sorted(set(lateralities))}); "
                          "choose another subset or add images")
    return chosen


def output_position(feature_shape: tuple[int, int], position: str | tuple[int, int] = "centre") -> tuple[int, int]:
    """The output position ``(row, col)``: ``"centre"`` (``(h // 2, w // 2)``) or a given pair."""
    height, width = feature_shape
    if isinstance(position, str):
        if position not in ("centre", "center"):
            raise ConfigError(f"position must be 'centre' or (row, col), got {position!r}")
        return height // 2, width // 2
    row, col = (int(v) for v in position)
    if not (0 <= row < height and 0 <= col < width):
        raise ConfigError(f"output position {(row, col)} is outside the {height}x{width} output feature map; "
                          f"use 0 <= row < {height}, 0 <= col < {width}")
    return row, col


def _image_and_mask(item) -> tuple[torch.Tensor, np.ndarray | None]:
    """A ``(C, H, W)`` tensor, or anything with ``.tensor`` (and ``.mask``) such as a ``Preprocessed``."""
    if isinstance(item, torch.Tensor):
        return item, None
    tensor = getattr(item, "tensor", None)
    if not isinstance(tensor, torch.Tensor):
        raise ConfigError(f"an ERF image must be a (C, H, W) tensor or have a .tensor; got {type(item).__name__}")
    mask = getattr(item, "mask", None)
    return tensor, None if mask is None else np.asarray(mask, dtype=np.float32)


def _model_device(model: nn.Module, fallback: torch.device) -> tuple[torch.device, torch.dtype]:
    for tensor in (*model.parameters(), *model.buffers()):
        if tensor.is_floating_point():
            return tensor.device, tensor.dtype
    return fallback, torch.float32


def _auto_batch_size(device: torch.device, bytes_per_image: int | None) -> int:
    """CPU: 1 (a larger batch is not faster there). CUDA: what 70% of free memory holds, at most 32."""
    if device.type != "cuda" or not bytes_per_image:
        return 1
    free, _ = torch.cuda.mem_get_info(device)
    return max(1, min(_CUDA_MAX_BATCH, int(0.7 * free // bytes_per_image)))


class _EvalMode:
    """Eval mode for the duration (training flags restored after), in full float32 precision.

    TF32 is switched off for the process and never back (:func:`hct.devices.disable_tf32`: the flags
    are process-global, so restoring them would change other threads' matmuls mid-run). cudnn
    autotuning is left as it is: re-tuning for every new batch shape cost more than it saved over 100
    full-resolution images.
    """

    def __init__(self, model: nn.Module, device: torch.device) -> None:
        self.model, self.device = model, device

    def __enter__(self):
        self.training = [(m, m.training) for m in self.model.modules()]
        self.model.eval()
        disable_tf32()
        return self

    def __exit__(self, *exc) -> None:
        for module, mode in self.training:
            module.training = mode


def input_gradients(feature_fn: Callable[[torch.Tensor], torch.Tensor], x: torch.Tensor,
                    position: str | tuple[int, int] = "centre", channels_last: bool = True,
                    ) -> tuple[torch.Tensor, tuple[int, int], tuple[int, int]]:
    """Each image's input gradient of the output feature map's ``position`` (all channels summed).

    ``x`` is ``(B, C, H, W)``; returns ``((B, C, H, W) gradients, (row, col), feature map (h, w))``. One backward pass:
    the selected outputs are summed over the batch and differentiated w.r.t. ``x`` only, so no
    parameter gradient is computed. With ``channels_last`` on CPU the input is restrided
    channels-last, so the convolutions use their faster channels-last kernels (same maps to float32
    rounding).
    """
    x = x.detach()
    if channels_last and x.device.type == "cpu" and x.dim() == 4:
        x = x.to(memory_format=torch.channels_last)  # restrides even a 1-channel input
    x.requires_grad_(True)
    with torch.enable_grad():
        features = feature_fn(x)
        if features.dim() != 4:
            raise ConfigError(f"the feature function must return (B, C, h, w); got shape {tuple(features.shape)}")
        row, col = output_position(features.shape[-2:], position)
        (grad,) = torch.autograd.grad(features[:, :, row, col].sum(), x)
    return grad.contiguous(), (row, col), tuple(features.shape[-2:])


def compute_erf(model: nn.Module, images: Sequence, *, position: str | tuple[int, int] = "centre",
                lateralities: Sequence[str] | None = None, subset: str = "all",
                reduction: str = "mean", batch_size: int | str = "auto",
                feature_fn: Callable[[torch.Tensor], torch.Tensor] | None = None,
                masks: Sequence[np.ndarray] | None = None, keep_image_maps: bool = True,
                model_name: str | None = None, progress: Callable[[int, int], None] | None = None,
                cancel: Callable[[], bool] | None = None) -> ERFResult:
    """The ERF of ``model`` at output ``position`` over ``images`` (all of one size).

    ``images``: a ``(N, C, H, W)`` tensor or a sequence of ``(C, H, W)`` tensors or of objects with
    ``.tensor`` and ``.mask`` (``hct.data.Preprocessed``); a lazy sequence keeps memory to one batch.
    ``feature_fn`` maps ``(B, C, H, W)`` to the output feature map (default ``model.forward_features``, else
    ``model`` itself). ``subset`` keeps ``all`` images or the ``left``/``right`` breasts given
    ``lateralities``. ``reduction``: ``"mean"`` (default: the signed mean gradient, as Luo et al.
    and the paper) or ``"mean_abs"``. ``batch_size``: ``"auto"`` (1 on CPU, memory-bound on CUDA)
    or an int. ``progress(done, total)`` is called after each batch; ``cancel()`` returning True
    raises :class:`ComputationCancelled`. The model is evaluated in eval mode on its own device;
    its training flags are restored afterwards and its parameters are never modified.
    """
    if reduction not in REDUCTIONS:
        raise ConfigError(f"unknown ERF reduction {reduction!r}; choose one of {REDUCTIONS}")
    if batch_size != "auto" and (not isinstance(batch_size, int) or batch_size < 1):
        raise ConfigError(f"batch_size must be 'auto' or a positive int, got {batch_size!r}")
    chosen = select_subset(lateralities, subset, len(images))
    if masks is not None and len(masks) != len(images):
        raise ConfigError(f"got {len(masks)} masks for {len(images)} images; give one mask per image")
    fn = feature_fn or getattr(model, "forward_features", model)
    first, _ = _image_and_mask(images[chosen[0]])
    device, dtype = _model_device(model, first.device)
    total = len(chosen)
    # torchvision's deformable convolution has no channels-last kernel: converting costs more there.
    fast_layout = not any(isinstance(m, DeformConv2d) for m in model.modules())

    sum_map = None
    mask_sum, mask_count = None, 0
    curves_cols, curves_rows, kept = [], [], []
    size = 1 if batch_size == "auto" else batch_size
    done = 0
    pos = feature_hw = None
    with _EvalMode(model, device):
        while done < total:
            if cancel is not None and cancel():
                raise ComputationCancelled(f"ERF of {model_name or _name(model)} cancelled after {done} of {total} images")
            batch_idx = chosen[done:done + size]
            tensors = []
            for i in batch_idx:
                tensor, mask = _image_and_mask(images[i])
                if masks is not None:
                    mask = np.asarray(masks[i], dtype=np.float32)
                if tensor.dim() == 4 and tensor.shape[0] == 1:
                    tensor = tensor[0]
                if tensor.shape != first.shape:
                    raise ConfigError(f"image {i} has shape {tuple(tensor.shape)}, the first {tuple(first.shape)}; "
                                      "preprocess all images to one size")
                if mask is not None:
                    mask_sum = mask if mask_sum is None else mask_sum + mask
                    mask_count += 1
                tensors.append(tensor)
            x = torch.stack(tensors).to(device=device, dtype=dtype)
            if device.type == "cuda" and batch_size == "auto" and done == 0:
                torch.cuda.reset_peak_memory_stats(device)
                base = torch.cuda.memory_allocated(device)
            grad, pos, feature_hw = input_gradients(fn, x, position, channels_last=fast_layout)
            if device.type == "cuda" and batch_size == "auto" and done == 0:
                size = _auto_batch_size(device, (torch.cuda.max_memory_allocated(device) - base) // len(tensors))
            grad = grad.sum(dim=1)  # over input channels -> (B, H, W)
            if reduction == "mean_abs":
                grad = grad.abs()
            grad = grad.float()
            sum_map = grad.sum(0) if sum_map is None else sum_map + grad.sum(0)
            curves_cols.append(grad.sum(1).cpu().numpy())
            curves_rows.append(grad.sum(2).cpu().numpy())
            if keep_image_maps:
                kept.append(grad.cpu().numpy().astype(np.float32, copy=False))
            done += len(batch_idx)
            if progress is not None:
                progress(done, total)

    mean_map = (sum_map / total).cpu().numpy().astype(np.float32)
    height, width = mean_map.shape
    stride = (height / feature_hw[0], width / feature_hw[1])
    return ERFResult(
        map=mean_map, reduction=reduction,
        curve_over_columns=mean_map.sum(axis=0), curve_over_rows=mean_map.sum(axis=1),
        image_curves_over_columns=np.concatenate(curves_cols), image_curves_over_rows=np.concatenate(curves_rows),
        position=pos, input_centre=(pos[0] * stride[0], pos[1] * stride[1]), stride=stride,
        model_name=model_name or _name(model), subset=subset, n=total, indices=chosen,
        image_maps=np.concatenate(kept) if keep_image_maps else None,
        mask=None if mask_sum is None else (mask_sum / mask_count).astype(np.float32),
    )


def _name(model: nn.Module) -> str:
    return getattr(model, "name", type(model).__name__)


def curve_band(result: ERFResult, axis: str = "columns", level: float = 0.95, n_boot: int = 1000,
               sqrt: bool = False, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Percentile-bootstrap band of the mean curve over images: ``(low, high)``.

    ``axis="columns"`` is the curve over columns (``curve_over_columns``), ``"rows"`` the curve
    over rows. Images are resampled with replacement ``n_boot`` times; ``sqrt`` bands the square
    root of the absolute mean curve. With one image the band is the curve itself.
    """
    if axis not in ("columns", "rows"):
        raise ConfigError(f"axis must be 'columns' or 'rows', got {axis!r}")
    if not 0 < level < 1:
        raise ConfigError(f"level must be in (0, 1), got {level}")
    curves = result.image_curves_over_columns if axis == "columns" else result.image_curves_over_rows
    rng = np.random.default_rng(seed)
    n = curves.shape[0]
    boots = np.empty((n_boot, curves.shape[1]), dtype=np.float64)
    for b in range(n_boot):
        boots[b] = curves[rng.integers(0, n, n)].mean(axis=0)
    if sqrt:
        boots = np.sqrt(np.abs(boots))
    tail = 100 * (1 - level) / 2
    return np.percentile(boots, tail, axis=0), np.percentile(boots, 100 - tail, axis=0)


def erf_from_maps(image_maps: np.ndarray, **fields) -> ERFResult:
    """An :class:`ERFResult` from given per-image maps ``(N, H, W)`` (e.g. a synthetic map for tests)."""
    maps = np.asarray(image_maps, dtype=np.float32)
    if maps.ndim == 2:
        maps = maps[None]
    mean_map = maps.mean(axis=0)
    defaults = dict(reduction="mean", position=(0, 0), input_centre=((maps.shape[1] - 1) / 2, (maps.shape[2] - 1) / 2),
                    stride=(1.0, 1.0), model_name="", subset="all")
    defaults.update(fields)
    return ERFResult(map=mean_map, curve_over_columns=mean_map.sum(axis=0), curve_over_rows=mean_map.sum(axis=1),
                     image_curves_over_columns=maps.sum(axis=1), image_curves_over_rows=maps.sum(axis=2),
                     n=maps.shape[0], indices=list(range(maps.shape[0])), image_maps=maps, **defaults)


def curves_frame(results: Sequence[ERFResult]) -> pd.DataFrame:
    """The aggregate curves of several ERFs in long form, for CSV: model, subset, n, curve
    (``over_columns``: the map summed over rows; ``over_rows``), position, erf, sqrt_erf."""
    frames = []
    for r in results:
        for curve, values, roots in (("over_columns", r.curve_over_columns, r.sqrt_curve_over_columns),
                                     ("over_rows", r.curve_over_rows, r.sqrt_curve_over_rows)):
            frames.append(pd.DataFrame({"model": r.model_name, "subset": r.subset, "n": r.n, "curve": curve,
                                        "position": np.arange(values.size), "erf": values, "sqrt_erf": roots}))
    return pd.concat(frames, ignore_index=True)
