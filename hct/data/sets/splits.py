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


def complete_splits(
    records: list[ImageRecord], seed: int = 0, fractions: tuple[float, float, float] = (0.8, 0.1, 0.1)
) -> list[ImageRecord]:
    """Copies of ``records`` ready to train on. Without any split, patient-level train/val/test by
    :func:`assign_splits`. With the data set's own split but no val, a fraction ``fractions[1]`` of the
    train patients (at least one of two or more) becomes val; test stays as the data set defines it."""
    if not any(r.split for r in records):
        return assign_splits(records, seed, fractions)
    if any(r.split == "val" for r in records):
        return list(records)
    patients = sorted({patient_key(r) for r in records if r.split == "train"})
    count = max(1, round(fractions[1] * len(patients))) if len(patients) > 1 else 0
    val = {patients[i] for i in np.random.default_rng(seed).permutation(len(patients))[:count]}
    return [dataclasses.replace(r, split="val") if r.split == "train" and patient_key(r) in val else r for r in records]
