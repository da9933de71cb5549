"""The generic CSV manifest: one row per :class:`ImageRecord`, columns named after its fields.

``finding_types`` is ';'-joined, ``finding_boxes`` a JSON list of [row0, col0, row1, col1],
``finding_masks`` a JSON list of paths; relative paths are relative to the manifest's folder.
"""

from __future__ import annotations

import csv
import dataclasses
import io
import json
import os
from pathlib import Path

from hct.data.records import FINDING_TYPES, LATERALITIES, SPLITS, VIEWS, ImageRecord, box_size
from hct.data.sets.tables import read_table
from hct.errors import ConfigError
from hct.io import atomic_write

COLUMNS = tuple(f.name for f in dataclasses.fields(ImageRecord))
MANIFEST_NAME = "manifest.csv"  # the manifest a data set folder holds (the phantom writes one)


def make_record(**fields) -> ImageRecord:
    """An :class:`ImageRecord` whose ``finding_size`` is computed from its boxes, values checked."""
    boxes = tuple(tuple(int(v) for v in box) for box in fields.pop("finding_boxes", ()))
    masks = tuple(str(path) for path in fields.pop("finding_masks", ()))
    fields.pop("finding_size", None)
    record = ImageRecord(
        finding_boxes=boxes, finding_size=max((box_size(b) for b in boxes), default=None), finding_masks=masks, **fields
    )
    check_record(record)
    return record


def check_record(record: ImageRecord) -> None:
    """Raise :class:`ConfigError` when a record holds a value outside the schema."""
    problems = []
    if record.laterality not in LATERALITIES + ("",):
        problems.append(f"laterality {record.laterality!r} (use L or R)")
    if record.view not in VIEWS + ("",):
        problems.append(f"view {record.view!r} (use CC or MLO)")
    if record.label not in (-1, 0, 1):
        problems.append(f"label {record.label!r} (use 1 malignant, 0 non-malignant, -1 unknown)")
    if record.split not in SPLITS + ("",):
        problems.append(f"split {record.split!r} (use train, val or test)")
    unknown = set(record.finding_types) - set(FINDING_TYPES)
    if unknown:
        problems.append(f"finding types {sorted(unknown)} (use {', '.join(FINDING_TYPES)})")
    if any(len(b) != 4 or b[2] <= b[0] or b[3] <= b[1] for b in record.finding_boxes):
        problems.append(f"boxes {record.finding_boxes} (need row0 < row1 and col0 < col1)")
    if problems:
        raise ConfigError(f"Image {record.image_id!r} has invalid " + "; ".join(problems) + ".")


def _relative(text: str, folder: Path) -> str:
    path = Path(text)
    if path.is_absolute() and path.resolve().is_relative_to(folder):
        path = path.resolve().relative_to(folder)
    return path.as_posix()


def _resolved(text: str, folder: Path) -> str:
    path = Path(text)
    return os.fspath(path if path.is_absolute() else folder / path)


def write_manifest(records: list[ImageRecord], path: str | Path) -> Path:
    """Write ``records`` as a manifest CSV; paths under its folder are stored relative to it."""
    path = Path(path)
    folder = path.parent.resolve()
    with io.StringIO() as handle:
        writer = csv.DictWriter(handle, fieldnames=COLUMNS)
        writer.writeheader()
        for record in records:
            row = dataclasses.asdict(record)
            row.update(
                path=_relative(record.path, folder),
                finding_types=";".join(record.finding_types),
                finding_boxes=json.dumps([list(b) for b in record.finding_boxes]),
                finding_size="" if record.finding_size is None else f"{record.finding_size:.3f}",
                finding_masks=json.dumps([_relative(m, folder) for m in record.finding_masks]),
            )
            writer.writerow(row)
        atomic_write(path, handle.getvalue())
    return path


def is_manifest(source: str | Path) -> bool:
    """Whether ``source`` is a manifest: a ``.csv`` file, or a folder holding ``manifest.csv``."""
    path = Path(source)
    return (path.is_file() and path.suffix.lower() == ".csv") or (path.is_dir() and (path / MANIFEST_NAME).is_file())


def read_manifest(path: str | Path) -> list[ImageRecord]:
    """Read a manifest CSV, or the ``manifest.csv`` of a data set folder; relative image paths are resolved
    against the manifest's folder."""
    path = Path(path)
    path = path / MANIFEST_NAME if path.is_dir() else path
    rows = read_table(
        path,
        ("image_id", "path"),
        "Manifest",
        f"write one with `python -m hct data check --write-manifest` or `python -m hct phantom` "
        f"(columns: {', '.join(COLUMNS)}).",
    )
    records = []
    for line, row in enumerate(rows, start=2):
        try:
            boxes = json.loads(row.get("finding_boxes") or "[]")
            masks = json.loads(row.get("finding_masks") or "[]")
            records.append(
                make_record(
                    image_id=row["image_id"],
                    path=_resolved(row["path"], path.parent),
                    patient_id=row.get("patient_id") or "",
                    exam_id=row.get("exam_id") or "",
                    laterality=row.get("laterality") or "",
                    view=row.get("view") or "",
                    label=int(row.get("label") or -1),
                    finding_types=tuple(t for t in (row.get("finding_types") or "").split(";") if t),
                    finding_boxes=boxes,
                    split=row.get("split") or "",
                    finding_masks=[_resolved(m, path.parent) for m in masks],
                )
            )
        except (ValueError, TypeError) as err:
            raise ConfigError(f"Manifest {path}, line {line}: {err}; fix that row.") from err
    return records
