"""Where explanations point: each method's map scored against the finding's outline: its ROI masks
where the data set has them (CBIS-DDSM), else its boxes.

Scores, at model resolution (the canonical input the model classifies):

- *energy*: the energy-based pointing game (Wang et al., Score-CAM), the share of the map's
  positive mass that lies inside the finding; a uniform map scores the finding's area share.
- *hit*: the pointing game (Zhang et al.), whether the map's maximum (the first, in row-major order,
  when several pixels tie) lies inside the finding or within ``tolerance`` pixels of it.

A map without positive mass (Grad-CAM of an untrained model, say) has no energy (NaN, counted as
``n_empty`` in the summary) and misses.
- *area share*: the finding's share of the model input, the energy a uniform map would score.

``attention`` is the attention each position receives (:func:`attention_received`), which needs no
query, so it can be scored against a finding it was not told of.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from pathlib import Path

import numpy as np
import pandas as pd
from scipy import ndimage
from torch import nn

from hct.data import ImageRecord, Preprocessed, preprocess, read_mammogram
from hct.data.records import Box
from hct.data.sets.dicom_index import read_binary_mask
from hct.errors import ConfigError, MammogramError, cancellable
from hct.eval.roc import iter_bootstrap_indices
from hct.explain.attention_maps import attention_received
from hct.explain.attribution import attribute
from hct.explain.options import LOCALIZATION_METHODS, TOLERANCE
from hct.models.scores import input_mode

SCORES = ("energy", "hit")


def check_boxes(boxes: Sequence[Box], shape: tuple[int, int], name: str) -> None:
    """Raise :class:`MammogramError` when a finding box does not lie inside a ``shape`` image."""
    rows, cols = shape
    for box in boxes:
        row0, col0, row1, col1 = box
        if row0 < 0 or col0 < 0 or row1 > rows or col1 > cols or row1 <= row0 or col1 <= col0:
            raise MammogramError(
                f"{name}: finding box {tuple(box)} (row0, col0, row1, col1) lies outside the "
                f"{rows}x{cols} image; fix the box in the manifest."
            )


def finding_mask(pre: Preprocessed, boxes: Sequence[Box]) -> np.ndarray:
    """The model-input pixels whose centres lie inside any of the original-pixel ``boxes``."""
    height, width = pre.size
    rows, cols = np.arange(height)[:, None] + 0.5, np.arange(width)[None, :] + 0.5
    mask = np.zeros((height, width), bool)
    for box in boxes:
        row0, col0, row1, col1 = pre.to_model(box)
        mask |= (rows >= row0) & (rows < row1) & (cols >= col0) & (cols < col1)
    return mask


def finding_region(pre: Preprocessed, record: ImageRecord) -> tuple[np.ndarray, str]:
    """The record's findings at model resolution, and what outlines them: its ROI masks (``"ROI mask"``,
    CBIS-DDSM) when it has them, else its boxes (``"box"``)."""
    if not record.finding_masks:
        return finding_mask(pre, record.finding_boxes), "box"
    region = np.zeros(pre.size, bool)
    for path in record.finding_masks:
        outline = read_binary_mask(path) if Path(path).is_file() else None
        if outline is None or outline.shape != pre.original_shape:
            raise MammogramError(
                f"{record.image_id}: ROI mask {path} is missing or is not a binary image of the "
                f"mammogram's size {pre.original_shape}; run `python -m hct data check` again."
            )
        region |= pre.to_model_mask(outline)
    return region, "ROI mask"


def energy_inside(heatmap: np.ndarray, mask: np.ndarray) -> float:
    """The share of the map's positive mass inside ``mask`` (NaN when the map has none)."""
    positive = np.clip(np.asarray(heatmap, dtype=np.float64), 0, None)
    total = positive.sum()
    return float(positive[mask].sum() / total) if total > 0 else float("nan")


def pointing_hit(heatmap: np.ndarray, mask: np.ndarray, tolerance: float = TOLERANCE) -> bool:
    """Whether the map's maximum lies within ``tolerance`` pixels of ``mask``."""
    if not mask.any() or not (np.asarray(heatmap) > 0).any():
        return False
    distance = ndimage.distance_transform_edt(~mask)
    peak = np.unravel_index(int(np.argmax(heatmap)), heatmap.shape)
    return bool(distance[peak] <= tolerance)


def score(heatmap: np.ndarray, mask: np.ndarray, tolerance: float = TOLERANCE) -> dict:
    """Energy, hit and the finding's area (pixels and share) of one map against one finding mask."""
    if heatmap.shape != mask.shape:
        raise ConfigError(f"map {heatmap.shape} and finding mask {mask.shape} differ in size")
    return {
        "energy": energy_inside(heatmap, mask),
        "hit": pointing_hit(heatmap, mask, tolerance),
        "finding_area_px": int(mask.sum()),
        "area_share": float(mask.mean()),
    }


def method_map(model: nn.Module, pre: Preprocessed, method: str) -> np.ndarray:
    """The model-resolution map of ``method`` (one of :data:`LOCALIZATION_METHODS`) for one image."""
    if method == "attention":
        return attention_received(model, pre, mask=pre.mask)
    return attribute(model, pre, method).heatmap


def localizable(records: Sequence[ImageRecord]) -> list[ImageRecord]:
    """The malignant images that have finding boxes."""
    return [r for r in records if r.label == 1 and r.finding_boxes]


def localize(
    models: Mapping[str, nn.Module],
    records: Sequence[ImageRecord],
    methods: Sequence[str],
    size: tuple[int, int],
    tolerance: float = TOLERANCE,
    progress: Callable[[int, int], None] | None = None,
    cancel: Callable[[], bool] | None = None,
) -> pd.DataFrame:
    """One row per (image, model, method): the scores of :func:`score`, over the malignant images of
    ``records`` that have boxes, each image preprocessed as each model's card says (its ``input_mode``).
    ``attention`` is skipped for models without attention layers. ``progress(done, total)`` after each
    image; ``cancel()`` returning True stops there."""
    unknown = set(methods) - set(LOCALIZATION_METHODS)
    if unknown:
        raise ConfigError(f"unknown method(s) {sorted(unknown)}; choose from {LOCALIZATION_METHODS}")
    images = localizable(records)
    if not images:
        raise ConfigError("no malignant image with a finding box: localization needs boxes (phantom, VinDr, OPTIMAM)")
    progress = cancellable(progress, cancel, "localization")
    rows = []
    for done, record in enumerate(images, start=1):
        image = read_mammogram(record.path)
        check_boxes(record.finding_boxes, image.pixels.shape, record.image_id)
        inputs: dict[str, tuple] = {}  # by preprocessing mode: (Preprocessed, finding mask, region)
        for label, model in models.items():
            mode = input_mode(model)
            if mode not in inputs:
                pre = preprocess(image, size, mode)
                inputs[mode] = (pre, *finding_region(pre, record))
            pre, mask, region = inputs[mode]
            has_attention = bool(getattr(model, "attention_layers", dict)())
            for method in methods:
                if method == "attention" and not has_attention:
                    continue
                rows.append(
                    {
                        "image_id": record.image_id,
                        "model": label,
                        "method": method,
                        "finding_types": ";".join(record.finding_types),
                        "region": region,
                        **score(method_map(model, pre, method), mask, tolerance),
                    }
                )
        if progress:
            progress(done, len(images))
    return pd.DataFrame(rows)


def bootstrap_mean(
    values: np.ndarray, n_boot: int = 10_000, seed: int = 0, alpha: float = 0.05
) -> tuple[float, float, float]:
    """The mean and its percentile-bootstrap interval over images (resampled as :mod:`hct.eval.roc` does)."""
    values = np.asarray(values, dtype=float)
    means = np.concatenate([values[idx].mean(axis=1) for idx in iter_bootstrap_indices(values.size, n_boot, seed)])
    low, high = np.quantile(means, [alpha / 2, 1 - alpha / 2])
    return float(values.mean()), float(low), float(high)


def summarise(rows: pd.DataFrame, n_boot: int = 10_000, seed: int = 0) -> pd.DataFrame:
    """Per model and method: images (and empty maps), mean energy and hit rate with 95% bootstrap
    intervals over images, and the mean area share (a uniform map's energy)."""
    out = []
    for (model, method), group in rows.groupby(["model", "method"], sort=False):
        scored = group.dropna(subset=["energy"])
        energy = bootstrap_mean(scored["energy"].to_numpy(), n_boot, seed) if len(scored) else (np.nan,) * 3
        hit = bootstrap_mean(group["hit"].to_numpy(dtype=float), n_boot, seed)
        out.append(
            {
                "model": model,
                "method": method,
                "n_images": len(group),
                "n_empty": len(group) - len(scored),
                "energy": energy[0],
                "energy_low": energy[1],
                "energy_high": energy[2],
                "hit_rate": hit[0],
                "hit_low": hit[1],
                "hit_high": hit[2],
                "area_share": float(group["area_share"].mean()),
            }
        )
    return pd.DataFrame(out)
