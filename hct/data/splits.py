"""Patient-level train/val/test splits, deterministic by seed."""

from __future__ import annotations

import dataclasses

import numpy as np

from hct.data.records import SPLITS, ImageRecord
from hct.errors import ConfigError


def patient_key(record: ImageRecord) -> str:
    """The patient a record belongs to (its image id when the data set has no patient id)."""
    return record.patient_id or record.image_id


def assign_splits(
    records: list[ImageRecord], seed: int = 0, fractions: tuple[float, float, float] = (0.8, 0.1, 0.1)
) -> list[ImageRecord]:
    """Copies of ``records`` with ``split`` set to train/val/test so that no patient is in two splits.

    Patients (not images) are shuffled with ``seed`` and cut at the cumulative ``fractions``.
    """
    if len(fractions) != 3 or min(fractions) < 0 or abs(sum(fractions) - 1) > 1e-6:
        raise ConfigError(f"Split fractions {fractions} must be three non-negative numbers summing to 1.")
    patients = sorted({patient_key(r) for r in records})
    order = np.random.default_rng(seed).permutation(len(patients))
    cuts = np.round(np.cumsum(fractions)[:2] * len(patients)).astype(int)
    split_of = {}
    for rank, index in enumerate(order):
        split_of[patients[index]] = SPLITS[int(np.searchsorted(cuts, rank, side="right"))]
    return [dataclasses.replace(r, split=split_of[patient_key(r)]) for r in records]
