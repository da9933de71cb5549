"""The paper's Table 1 and Table A2 in one computation: the ERFs of several models over three
subsets of N images each (all, right and left breasts), the same images for every model.

Sampling (seeded): the candidate images are put in one random order (:func:`hct.data.sets.sampling.seeded_order`,
the order every image sample of the project is drawn in); ``right`` and ``left`` are
the first N right and the first N left breasts in that order, and ``all`` the first N images of
either side. ``all`` is thus a uniform sample of N breasts that lies inside the two others, so the
three rows need at most 2N images, each read once and back-propagated once per model.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
from torch import nn

from hct.data.records import LATERALITIES
from hct.data.sets.sampling import seeded_order, subset_laterality
from hct.errors import ConfigError
from hct.explain.erf.compute import DEFAULT_REDUCTION, ERFResult, compute_erfs
from hct.explain.erf.engine import ERFEngine
from hct.explain.erf.metrics import erf_metrics

TABLE_SUBSETS = ("all", "right", "left")
# Columns of the metrics table, in order (see hct.explain.erf.metrics.erf_metrics).
METRICS = (
    "area_share_50",
    "area_share_99",
    "spread_rows",
    "spread_cols",
    "centroid_row",
    "centroid_col",
    "offset_row",
    "offset_col",
    "gaussian_r2_over_rows",
    "gaussian_r2_over_columns",
    "breast_share",
)


@dataclass(frozen=True)
class Table1Sample:
    """The images of each row: ``order`` holds the chosen candidates' indices (at most 2N), and
    ``subsets`` each row's positions in ``order``, ascending."""

    order: list[int]
    subsets: dict[str, list[int]]
    seed: int
    n: int


def sample_table1(count: int, side_of: Callable[[int], str], n: int, seed: int = 0) -> Table1Sample:
    """Draw the three rows from ``count`` candidates; ``side_of(i)`` gives candidate ``i``'s laterality
    (``'L'``/``'R'``; anything else is skipped) and is asked only until the rows are full."""
    if n < 1:
        raise ConfigError(f"N must be at least 1, got {n}")
    keeps = {name: subset_laterality(name) for name in TABLE_SUBSETS}  # None: either side
    order, sides, rows = [], [], {name: [] for name in TABLE_SUBSETS}
    for candidate in seeded_order(count, seed):
        if all(len(rows[name]) == n for name in TABLE_SUBSETS):
            break
        side = str(side_of(candidate) or "").upper()[:1]
        if side not in LATERALITIES:
            continue
        wanted = [name for name in TABLE_SUBSETS if len(rows[name]) < n and keeps[name] in (None, side)]
        if wanted:
            for name in wanted:
                rows[name].append(len(order))
            order.append(candidate)
            sides.append(side)
    short = {name: len(rows[name]) for name in TABLE_SUBSETS if len(rows[name]) < n}
    if short:
        found = ", ".join(f"{k} {name} breasts" for name, k in short.items())
        raise ConfigError(
            f"N = {n} is more than the images hold: only {found} among the {count} images; "
            f"lower N to at most {min(short.values())} or add images"
        )
    return Table1Sample(order, rows, seed, n)


@dataclass
class Table1:
    """The ERFs of every model (model-major) and row, and how they were made."""

    results: list[ERFResult]
    sample: Table1Sample
    image_ids: list[str]
    settings: dict = field(default_factory=dict)

    @property
    def models(self) -> list[str]:
        return list(dict.fromkeys(r.model_name for r in self.results))

    def result(self, model: str, subset: str) -> ERFResult:
        return next(r for r in self.results if r.model_name == model and r.subset == subset)

    def metrics(self) -> pd.DataFrame:
        """One row per model and subset (see ``METRICS``; pixels at input resolution), then per model
        a ``right - left`` row: the shift of the centroid between the right and left rows."""
        rows = []
        for model in self.models:
            found = {s: erf_metrics(self.result(model, s)) for s in TABLE_SUBSETS}
            for subset, metrics in found.items():
                rows.append(
                    {
                        "model": model,
                        "subset": subset,
                        "n": self.result(model, subset).n,
                        **{k: metrics.get(k, np.nan) for k in METRICS},
                    }
                )
            height, width = self.results[0].shape
            shift_row = found["right"]["centroid_row"] - found["left"]["centroid_row"]
            shift_col = found["right"]["centroid_col"] - found["left"]["centroid_col"]
            rows.append(
                {
                    "model": model,
                    "subset": "right - left",
                    "centroid_row": shift_row,
                    "centroid_col": shift_col,
                    "centroid_row_frac": shift_row / height,
                    "centroid_col_frac": shift_col / width,
                }
            )
        return pd.DataFrame(rows)

    def images_frame(self) -> pd.DataFrame:
        """The images used, in order, with the rows each is in and the sampling seed."""
        members = {name: set(positions) for name, positions in self.sample.subsets.items()}
        return pd.DataFrame(
            {
                "image_id": self.image_ids,
                **{name: [k in members[name] for k in range(len(self.image_ids))] for name in TABLE_SUBSETS},
                "seed": self.sample.seed,
            }
        )


def compute_table1(
    models: Mapping[str, nn.Module],
    images: Sequence,
    sample: Table1Sample,
    *,
    image_ids: Sequence[str] | None = None,
    position: str | tuple[int, int] = "centre",
    reduction: str = DEFAULT_REDUCTION,
    stage: int | None = None,
    engine: ERFEngine | None = None,
    settings: dict | None = None,
) -> Table1 | None:
    """Table 1 of ``models`` (label -> model): ``images`` are the sample's images in ``sample.order``
    (``images[k]`` is candidate ``sample.order[k]``). Under torchrun, rank 0 gets it, the others ``None``."""
    if len(images) != len(sample.order):
        raise ConfigError(
            f"got {len(images)} images for a sample of {len(sample.order)}; pass the images in sample.order"
        )
    results = compute_erfs(
        models, images, sample.subsets, position=position, reduction=reduction, stage=stage, engine=engine
    )
    if results is None:
        return None
    ids = list(image_ids) if image_ids is not None else [str(i) for i in sample.order]
    info = {
        "n": sample.n,
        "seed": sample.seed,
        "reduction": reduction,
        "position": position,
        "stage": results[0].stage,
        **(settings or {}),
    }
    return Table1(results, sample, ids, info)
