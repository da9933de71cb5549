"""Effective receptive field (Luo et al., NeurIPS 2016), as computed in the paper (Sec. 4, Tab. 1).

For each image: eval mode, forward to the output feature map (or a stage's), gradient one at one
output position (all channels) and zero elsewhere, back-propagate to the input. The ERF is a mean
over N images of these input gradients, reduced per image: ``mean`` keeps the sign (Luo et al.,
the paper's text), ``mean_abs`` takes ``|grad|`` and ``positive`` takes ``relu(grad)`` (RepLKNet's
``visualize_erf.py``). ``mean_abs`` is the default: on the built-in samples the signed gradients of
neighbouring pixels cancel (GMIC's curves sum to 1% of their absolute mass), so only a non-negative
reduction shows the paper's curves, and it keeps the negative half that ``positive`` drops
(bench/RESULTS.md, "Which reduction").

This module is the maths: which images, which position, which reduction. How the per-image
gradients are obtained (batches, receptive-field windows, cache, torchrun ranks, progress, cancel)
is :class:`hct.explain.erf.engine.ERFEngine`'s.
"""

from __future__ import annotations

from collections.abc import Callable, Hashable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
import torch
from torch import nn

from hct.data.sets.sampling import sample_images, subset_laterality
from hct.errors import ConfigError
from hct.explain.erf.engine import ERFEngine, ImageGradient, Target
from hct.explain.erf.maps import DISPLAY_LONG_SIDE, area_downsample, default_normalisation, normaliser
from hct.explain.options import DEFAULT_REDUCTION, REDUCTIONS
from hct.models.ref import ModelRef, ref_of

THUMBNAIL_LONG_SIDE = 256


def reduce_gradient(values: np.ndarray, reduction: str) -> np.ndarray:
    """One image's gradient as it enters the mean: signed, absolute or its positive part."""
    if reduction == "mean":
        return values
    if reduction == "mean_abs":
        return np.abs(values)
    if reduction == "positive":
        return np.maximum(values, 0)
    raise ConfigError(f"unknown ERF reduction {reduction!r}; choose one of {REDUCTIONS}")


@dataclass
class ERFResult:
    """An ERF and its aggregates, all at input resolution (``H x W`` image pixels).

    ``map`` is the mean over images of the per-image input gradient, reduced (see the module).
    ``curve_over_columns`` is ``map`` summed over rows (one value per column: the paper's "across
    rows" curve); ``curve_over_rows`` is ``map`` summed over columns (the "across columns" curve).
    ``sqrt_*`` are the square roots of their absolute values. ``image_curves_over_*`` hold every
    image's curve, for spread bands (:func:`curve_band`); ``image_thumbnails`` every image's map
    area-averaged to 256 pixels on its long side; ``image_maps`` every image's full map, when kept.
    ``position`` is the output position ``(row, col)`` on the ``feature_shape`` map of ``stage``
    (``None``: a given feature function), ``input_centre`` its receptive field's centre in input
    pixels, ``stride`` input pixels per output position, ``mask`` the mean breast mask and ``image_breast_shares`` each
    image's share of its ``|ERF|`` inside its own breast mask (NaN without a mask).
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
    feature_shape: tuple[int, int]
    model: ModelRef
    subset: str
    n: int
    indices: list[int] = field(default_factory=list)
    stage: int | None = None
    image_thumbnails: np.ndarray | None = None
    image_breast_shares: np.ndarray | None = None
    image_maps: np.ndarray | None = None
    mask: np.ndarray | None = None
    _memo: dict = field(default_factory=dict, init=False, repr=False, compare=False)

    @property
    def model_name(self) -> str:
        """The model's label (its ref's), as figures, tables and file names show it."""
        return self.model.label

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

    def position_at(self, row: float, col: float) -> tuple[int, int]:
        """The output position whose receptive field is centred nearest to input pixel ``(row, col)``
        (for a click on the map)."""
        out = []
        for value, centre, index, stride, size in zip(
            (row, col), self.input_centre, self.position, self.stride, self.feature_shape
        ):
            out.append(int(min(max(round(index + (value - centre) / stride), 0), size - 1)))
        return out[0], out[1]

    def preview(self, long_side: int = DISPLAY_LONG_SIDE) -> np.ndarray:
        """``map`` area-averaged to at most ``long_side`` pixels on its long side (kept once made)."""
        return self.remember(("map", long_side), lambda: area_downsample(self.map, long_side))

    def preview_mask(self, long_side: int = DISPLAY_LONG_SIDE) -> np.ndarray | None:
        """The mean breast mask at the preview's resolution."""
        if self.mask is None:
            return None
        return self.remember(("mask", long_side), lambda: area_downsample(self.mask, long_side))

    def normaliser(self, how: str) -> float:
        """What ``map`` and the curves are divided by under normalisation ``how`` (``hct.explain.erf.maps``)."""
        return self.remember(("normaliser", how), lambda: normaliser(self.map, how))

    def remember(self, key: Hashable, make: Callable[[], Any]) -> Any:
        """``make()``, computed once per ``key`` for this result (previews, normalisers, metrics, bands),
        so that redrawing with other display settings recomputes nothing."""
        if key not in self._memo:
            self._memo[key] = make()
        return self._memo[key]


def select_subset(lateralities: Sequence[str] | None, subset: str, count: int) -> list[int]:
    """Indices of the images in ``subset`` (``all``, ``left`` or ``right`` breasts), in order
    (:func:`hct.data.sets.sampling.sample_images`)."""
    if subset_laterality(subset) is not None and (lateralities is None or len(lateralities) != count):
        raise ConfigError(
            f"subset {subset!r} needs one laterality ('L'/'R') per image; "
            f"got {'none' if lateralities is None else len(lateralities)} for {count} images"
        )
    return sample_images(count, subset=subset, seed=None, side_of=lateralities.__getitem__ if lateralities else None)


@dataclass
class _ReducedImage:
    """What one image adds to an ERF: its reduced gradient (inside its window) and its aggregates."""

    gradient: ImageGradient
    values: np.ndarray
    curve_over_columns: np.ndarray
    curve_over_rows: np.ndarray
    thumbnail: np.ndarray
    breast_share: float

    @classmethod
    def of(cls, gradient: ImageGradient, reduction: str) -> "_ReducedImage":
        values = reduce_gradient(gradient.values, reduction)
        rows, cols = gradient.window
        over_columns, over_rows = np.zeros(gradient.shape[1], np.float32), np.zeros(gradient.shape[0], np.float32)
        over_columns[cols], over_rows[rows] = values.sum(axis=0), values.sum(axis=1)
        full = np.zeros(gradient.shape, np.float32)
        full[rows, cols] = values
        share = float("nan")
        if gradient.mask is not None:
            magnitude = np.abs(values, dtype=np.float64)
            total = magnitude.sum()
            share = float((magnitude * gradient.mask[rows, cols]).sum() / total) if total > 0 else float("nan")
        return cls(gradient, values, over_columns, over_rows, area_downsample(full, THUMBNAIL_LONG_SIDE), share)


class _Accumulator:
    """The running ERF of one subset; images must be added in the subset's order. It holds each
    image's aggregates, not its map (unless ``keep_image_maps``)."""

    def __init__(self, keep_image_maps: bool) -> None:
        self.keep_image_maps = keep_image_maps
        self.first: ImageGradient | None = None
        self.sum_map: np.ndarray | None = None
        self.mask_sum: np.ndarray | None = None
        self.mask_count = 0
        self.aggregates: list[tuple[np.ndarray, np.ndarray, np.ndarray, float]] = []
        self.kept: list[tuple[tuple[slice, slice], np.ndarray]] = []

    def add(self, image: _ReducedImage) -> None:
        gradient = image.gradient
        if self.first is None:
            self.first, self.sum_map = gradient, np.zeros(gradient.shape, np.float64)
        self.sum_map[gradient.window] += image.values
        if gradient.mask is not None:
            self.mask_sum = gradient.mask + (0.0 if self.mask_sum is None else self.mask_sum)
            self.mask_count += 1
        self.aggregates.append((image.curve_over_columns, image.curve_over_rows, image.thumbnail, image.breast_share))
        if self.keep_image_maps:
            self.kept.append((gradient.window, image.values))

    def result(self, reduction: str, model: ModelRef, subset: str, indices: list[int], stage: int | None) -> ERFResult:
        first, n = self.first, len(self.aggregates)
        over_columns, over_rows, thumbnails, shares = zip(*self.aggregates)
        mean_map = (self.sum_map / n).astype(np.float32)
        height, width = first.shape
        image_maps = None
        if self.keep_image_maps:
            image_maps = np.zeros((n, height, width), np.float32)
            for k, (window, values) in enumerate(self.kept):
                image_maps[k][window] = values
        return ERFResult(
            map=mean_map,
            reduction=reduction,
            curve_over_columns=mean_map.sum(axis=0),
            curve_over_rows=mean_map.sum(axis=1),
            image_curves_over_columns=np.stack(over_columns),
            image_curves_over_rows=np.stack(over_rows),
            position=first.position,
            input_centre=first.input_centre,
            stride=(height / first.feature_shape[0], width / first.feature_shape[1]),
            feature_shape=tuple(first.feature_shape),
            model=model,
            subset=subset,
            n=n,
            indices=list(indices),
            stage=stage,
            image_thumbnails=np.stack(thumbnails),
            image_breast_shares=np.array(shares),
            image_maps=image_maps,
            mask=None if self.mask_sum is None else (self.mask_sum / self.mask_count).astype(np.float32),
        )


def reduce_subsets(
    gradients: Iterable[tuple[int, Sequence[ImageGradient]]],
    subsets: Mapping[str, Sequence[int]],
    reduction: str,
    models: Sequence[ModelRef],
    stages: Sequence[int | None],
    keep_image_maps: bool = False,
) -> list[ERFResult]:
    """The ERF of each model and subset (name -> image indices, ascending) from ``(index, one
    gradient per model)`` pairs in ascending index order; each image is reduced once per model
    whatever the subsets it is in. Results are model-major, subsets in ``subsets`` order."""
    members = {name: set(indices) for name, indices in subsets.items()}
    accumulators = [{name: _Accumulator(keep_image_maps) for name in subsets} for _ in models]
    for index, per_model in gradients:
        for gradient, by_subset in zip(per_model, accumulators):
            image = _ReducedImage.of(gradient, reduction)
            for name, chosen in members.items():
                if index in chosen:
                    by_subset[name].add(image)
    return [
        by_subset[name].result(reduction, model, name, list(subsets[name]), stage)
        for model, stage, by_subset in zip(models, stages, accumulators)
        for name in subsets
    ]


def _erfs(
    models: Mapping[str, nn.Module],
    targets: Sequence[Target],
    images: Sequence,
    subsets: Mapping[str, Sequence[int]],
    reduction: str,
    masks: Sequence[np.ndarray] | None,
    keep_image_maps: bool,
    engine: ERFEngine | None,
) -> list[ERFResult] | None:
    reduce_gradient(np.zeros(1, np.float32), reduction)  # a clear error before any work
    subsets = {name: sorted(set(indices)) for name, indices in subsets.items()}
    if not subsets or not all(subsets.values()):
        raise ConfigError(
            f"every ERF subset needs at least one image; got sizes { {name: len(v) for name, v in subsets.items()} }"
        )
    if masks is not None and len(masks) != len(images):
        raise ConfigError(f"got {len(masks)} masks for {len(images)} images; give one mask per image")
    engine = engine or ERFEngine()
    union = sorted(set().union(*subsets.values()))
    gradients = engine.gradients(list(models.values()), targets, images, union, masks)
    if not engine.context.is_main:
        for _ in gradients:  # this rank computes its share; rank 0 receives and reduces
            pass
        return None
    refs = [ref_of(model, label) for label, model in models.items()]
    return reduce_subsets(zip(union, gradients), subsets, reduction, refs, [t.stage for t in targets], keep_image_maps)


def compute_erfs(
    models: Mapping[str, nn.Module],
    images: Sequence,
    subsets: Mapping[str, Sequence[int]],
    *,
    position: str | tuple[int, int] = "centre",
    reduction: str = DEFAULT_REDUCTION,
    stage: int | None = None,
    masks: Sequence[np.ndarray] | None = None,
    keep_image_maps: bool = False,
    engine: ERFEngine | None = None,
) -> list[ERFResult] | None:
    """The ERFs of several models (name -> model) over several subsets of ``images`` (name -> image
    indices) at once: every image of the subsets' union is read once and back-propagated once per
    model. Returns one :class:`ERFResult` per model and subset, model-major (rank 0 under torchrun,
    ``None`` on the other ranks). Arguments as :func:`compute_erf`."""
    targets = [Target.of(model, position, stage) for model in models.values()]
    return _erfs(models, targets, images, subsets, reduction, masks, keep_image_maps, engine)


def compute_erf(
    model: nn.Module,
    images: Sequence,
    *,
    position: str | tuple[int, int] = "centre",
    lateralities: Sequence[str] | None = None,
    subset: str = "all",
    reduction: str = DEFAULT_REDUCTION,
    stage: int | None = None,
    feature_fn: Callable[[torch.Tensor], torch.Tensor] | None = None,
    masks: Sequence[np.ndarray] | None = None,
    keep_image_maps: bool = False,
    model_name: str | None = None,
    engine: ERFEngine | None = None,
) -> ERFResult | None:
    """The ERF of ``model`` at output ``position`` over ``images`` (all of one size).

    ``images``: a ``(N, C, H, W)`` tensor or a sequence of ``(C, H, W)`` tensors or of objects with
    ``.tensor`` and ``.mask`` (``hct.data.Preprocessed``); a lazy sequence keeps memory to one batch.
    ``stage`` (1-5, default 5: the output feature map) picks whose output is back-propagated;
    ``feature_fn`` replaces it for any other network (default ``model.forward_features``, else
    ``model``). ``subset`` keeps ``all`` images or the ``left``/``right`` breasts given
    ``lateralities``. ``reduction``: ``mean_abs`` (default), ``mean`` or ``positive`` (module doc).
    ``masks`` override the images' breast masks; ``keep_image_maps`` keeps every image's full map.
    ``engine`` says how the gradients are obtained (batching, cache, ranks, progress, cancel). The
    model is evaluated in eval mode on its own device; its training flags are restored afterwards
    and its parameters are never modified. Under torchrun, rank 0 gets the result, the others ``None``.
    """
    chosen = select_subset(lateralities, subset, len(images))
    name = model_name or ref_of(model).label
    results = _erfs(
        {name: model},
        [Target.of(model, position, stage, feature_fn)],
        images,
        {subset: chosen},
        reduction,
        masks,
        keep_image_maps,
        engine,
    )
    return None if results is None else results[0]


def curve_band(
    result: ERFResult,
    axis: str = "columns",
    level: float = 0.95,
    n_boot: int = 1000,
    sqrt: bool = False,
    seed: int = 0,
    scale: float = 1.0,
) -> tuple[np.ndarray, np.ndarray]:
    """Percentile-bootstrap band of the mean curve over images: ``(low, high)``.

    ``axis="columns"`` is the curve over columns (``curve_over_columns``), ``"rows"`` the curve
    over rows. Images are resampled with replacement ``n_boot`` times; curves are divided by
    ``scale`` (a normalisation) and ``sqrt`` bands the square root of the absolute mean curve.
    With one image the band is the curve itself.
    """
    if axis not in ("columns", "rows"):
        raise ConfigError(f"axis must be 'columns' or 'rows', got {axis!r}")
    if not 0 < level < 1:
        raise ConfigError(f"level must be in (0, 1), got {level}")
    return result.remember(
        ("band", axis, level, n_boot, sqrt, seed, scale),
        lambda: _bootstrap_band(result, axis, level, n_boot, sqrt, seed, scale),
    )


def _bootstrap_band(
    result: ERFResult, axis: str, level: float, n_boot: int, sqrt: bool, seed: int, scale: float
) -> tuple[np.ndarray, np.ndarray]:
    curves = (result.image_curves_over_columns if axis == "columns" else result.image_curves_over_rows) / scale
    rng = np.random.default_rng(seed)
    n = curves.shape[0]
    boots = np.empty((n_boot, curves.shape[1]), dtype=np.float64)
    for b in range(n_boot):
        boots[b] = curves[rng.integers(0, n, n)].mean(axis=0)
    if sqrt:
        boots = np.sqrt(np.abs(boots))
    tail = 100 * (1 - level) / 2
    return np.percentile(boots, tail, axis=0), np.percentile(boots, 100 - tail, axis=0)


def erf_from_maps(image_maps: np.ndarray, masks: np.ndarray | None = None, **fields) -> ERFResult:
    """An :class:`ERFResult` of given per-image maps ``(N, H, W)`` taken as they are (reduction
    ``"mean"``), e.g. a synthetic map for tests; ``masks`` ``(N, H, W)`` are their breast masks."""
    maps = np.asarray(image_maps, dtype=np.float32)
    maps = maps[None] if maps.ndim == 2 else maps
    height, width = maps.shape[1:]
    centre = fields.pop("input_centre", ((height - 1) / 2, (width - 1) / 2))
    gradients = [
        ImageGradient(
            m,
            (0, 0),
            (height, width),
            (0, 0),
            (height, width),
            centre,
            None if masks is None else np.asarray(masks[k], bool),
        )
        for k, m in enumerate(maps)
    ]
    result = reduce_subsets(
        ((k, [g]) for k, g in enumerate(gradients)),
        {"all": range(len(maps))},
        "mean",
        [fields.pop("model", ModelRef.of(""))],
        [None],
        keep_image_maps=True,
    )[0]
    for name, value in fields.items():
        setattr(result, name, value)
    return result


def curves_frame(results: Sequence[ERFResult], normalisation: str | None = None) -> pd.DataFrame:
    """The aggregate curves of several ERFs in long form, for CSV: model, subset, n, curve
    (``over_columns``: the map summed over rows; ``over_rows``), position, erf, sqrt_erf; each model's
    curves divided by its ``normalisation`` (``None``: its reduction's default; see ``hct.explain.erf.maps``)."""
    frames = []
    for r in results:
        how = normalisation or default_normalisation(r.reduction)
        for curve, values in (("over_columns", r.curve_over_columns), ("over_rows", r.curve_over_rows)):
            values = values / normaliser(values, how)
            frames.append(
                pd.DataFrame(
                    {
                        "model": r.model_name,
                        "subset": r.subset,
                        "n": r.n,
                        "curve": curve,
                        "normalisation": how,
                        "position": np.arange(values.size),
                        "erf": values,
                        "sqrt_erf": np.sqrt(np.abs(values)),
                    }
                )
            )
    return pd.concat(frames, ignore_index=True)
