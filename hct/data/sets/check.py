"""Check a data set as downloaded: which of its images are there and usable, and a manifest to train on.

:func:`check_data` returns a plain :class:`~hct.data.sets.report.DataReport` that ``python -m hct data check``
prints and the Images page shows; :func:`write_checked_manifest` turns it into a manifest that
``python -m hct train`` (through its config), ``predict --data`` and the app read as they are.
"""

from __future__ import annotations

import dataclasses
import os
from collections import Counter
from collections.abc import Callable, Sequence
from pathlib import Path

from hct.data.sets.adapters import ScanOptions, adapter
from hct.data.sets.dicom_index import Progress
from hct.data.sets.manifest import write_manifest
from hct.data.sets.report import DataReport
from hct.data.sets.roots import confine, confine_records
from hct.data.sets.splits import complete_splits
from hct.errors import ConfigError, cancellable
from hct.paths import existing


def check_data(
    source: str | Path,
    format: str,
    tables: Sequence[str | Path] = (),
    images: str | Path | None = None,
    cache_dir: str | Path | None = None,
    workers: int | None = None,
    progress: Progress | None = None,
    malignant_birads: tuple[int, ...] = (5,),
    roots: Sequence[Path] | None = None,
    cancel: Callable[[], bool] | None = None,
) -> DataReport:
    """What of the data set at ``source`` (``format``: a name in :data:`hct.data.sets.adapters.ADAPTERS`) is
    there and usable: the one dispatcher to the data set adapters.

    ``source`` is the folder the data set was downloaded to (or any folder above it), an OMI-DB data
    folder for ``optimam`` (``images``: its image folder, default the same), or a manifest CSV (or a
    folder holding ``manifest.csv``). ``tables``: the case description CSVs (CBIS-DDSM),
    finding_annotations.csv (VinDr-Mammo) or the clinical spreadsheet (CMMD); found under ``source``
    when not given. With ``roots`` (the app's data roots, :mod:`hct.data.sets.roots`), every path read is
    confined to them, a manifest's rows before any of their files is looked at. ``progress(done, total)``
    follows the files read; ``cancel()`` returning True stops the check there (:class:`ComputationCancelled`)."""
    chosen = adapter(format)
    progress = cancellable(progress, cancel, f"the check of {source}")
    if roots is not None:
        source, images = confine(source, roots), images and confine(images, roots)
    kind = "file" if str(source).endswith(chosen.file_suffixes) else "any"
    source = existing(source, kind, "data set path", chosen.wanted)
    found = chosen.find_tables(source, tables)
    if roots is not None:
        found = [confine(t, roots) for t in found]
    options = ScanOptions(images and Path(images), cache_dir, workers, malignant_birads, roots)
    report = chosen.scan(source, found, options, progress)
    if roots is not None:
        confine_records(report.records, source, roots)
    return report


def write_checked_manifest(
    report: DataReport, path: str | Path, seed: int = 0, replace: bool = True
) -> tuple[Path, dict[str, int]]:
    """Write the report's labelled images as a manifest with train/val/test splits
    (:func:`~hct.data.sets.splits.complete_splits`) to a ``.csv`` ``path`` (an existing file only when
    ``replace``); returns the path and the images per split."""
    if Path(path).suffix.lower() != ".csv":
        raise ConfigError(f"{path} is not a .csv path; a manifest is a CSV file (e.g. data/cbis_ddsm.csv).")
    if not replace and Path(path).exists():
        raise ConfigError(f"{path} exists already; choose another path, or allow replacing it.")
    labelled = [r for r in report.records if r.label in (0, 1)]
    if not labelled:
        raise ConfigError(f"{report.source} has no usable labelled image to write; see the report above.")
    # absolute paths: a path relative to the working folder would be read relative to the manifest's
    labelled = [
        dataclasses.replace(r, path=os.path.abspath(r.path), finding_masks=tuple(map(os.path.abspath, r.finding_masks)))
        for r in labelled
    ]
    records = complete_splits(labelled, seed)
    counts = dict(Counter(r.split or "none" for r in records))
    return write_manifest(records, path), counts
