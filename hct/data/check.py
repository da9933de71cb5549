"""Check a data set as downloaded: which of its images are there and usable, and a manifest to train on.

:func:`check_data` returns a plain :class:`~hct.data.report.DataReport` that ``python -m hct data check``
prints and the Images page shows; :func:`write_checked_manifest` turns it into a manifest that
``python -m hct train`` (through its config), ``predict --data`` and the app read as they are.
"""

from __future__ import annotations

import dataclasses
import os
import time
from collections import Counter
from collections.abc import Callable, Sequence
from pathlib import Path

from hct.data.cbis_ddsm import scan_cbis_ddsm
from hct.data.cbis_ddsm_jpeg import find_jpeg_release, scan_cbis_ddsm_jpeg
from hct.data.cmmd import scan_cmmd
from hct.data.dicom_index import DICOM_SUFFIXES, Progress, header_rows
from hct.data.manifest import read_manifest, write_manifest
from hct.data.optimam import read_optimam
from hct.data.options import FORMATS
from hct.data.phantom import MANIFEST_NAME
from hct.data.records import ImageRecord
from hct.data.report import DataReport
from hct.data.splits import complete_splits
from hct.data.vindr import scan_vindr_mammo
from hct.data_roots import confine, confine_records
from hct.errors import ConfigError, cancellable
from hct.paths import existing

# the data set's tables, looked for under the source folder when not given (the first pattern found)
TABLE_PATTERNS = {"cbis-ddsm": ("*case_description*.csv",), "vindr": ("finding_annotations.csv",),
                  "cmmd": ("CMMD_clinicaldata*.xlsx", "CMMD_clinicaldata*.csv")}


def check_data(source: str | Path, format: str, tables: Sequence[str | Path] = (), images: str | Path | None = None,
               cache_dir: str | Path | None = None, workers: int | None = None, progress: Progress | None = None,
               malignant_birads: tuple[int, ...] = (5,), roots: Sequence[Path] | None = None,
               cancel: Callable[[], bool] | None = None) -> DataReport:
    """What of the data set at ``source`` (``format``: one of ``FORMATS``) is there and usable.

    ``source`` is the folder the data set was downloaded to (or any folder above it), an OMI-DB data
    folder for ``optimam`` (``images``: its image folder, default the same), or a manifest CSV (or a
    folder holding ``manifest.csv``). ``tables``: the case description CSVs (CBIS-DDSM),
    finding_annotations.csv (VinDr-Mammo) or the clinical spreadsheet (CMMD); found under ``source``
    when not given. With ``roots`` (the app's data roots, :mod:`hct.data_roots`), every path read is
    confined to them, a manifest's rows before any of their files is looked at. ``progress(done, total)``
    follows the files read; ``cancel()`` returning True stops the check there (:class:`ComputationCancelled`)."""
    if format not in FORMATS:
        raise ConfigError(f"Unknown data set format {format!r}; use one of {', '.join(FORMATS)}.")
    progress = cancellable(progress, cancel, f"the check of {source}")
    if roots is not None:
        source, images = confine(source, roots), images and confine(images, roots)
    wanted = f"give a manifest CSV, or a folder holding {MANIFEST_NAME}" if format == "manifest" else \
        "give the folder the data set was downloaded to"
    source = existing(source, "file" if format == "manifest" and str(source).endswith(".csv") else "any",
                      "data set path", wanted)
    if format in ("manifest", "optimam"):
        records = (read_manifest(source / MANIFEST_NAME if source.is_dir() else source) if format == "manifest"
                   else read_optimam(source, images))
        if roots is not None:
            records = confine_records(records, source, roots)
        return verify_records(records, format, str(source), workers, progress)
    found = [Path(t) for t in tables] or _find_tables(source, TABLE_PATTERNS[format])
    if roots is not None:
        found = [confine(t, roots) for t in found]
    jpeg_info = find_jpeg_release(source) if format == "cbis-ddsm" else None
    if jpeg_info is not None:
        report = scan_cbis_ddsm_jpeg(found, confine(jpeg_info, roots) if roots is not None else jpeg_info,
                                     workers, progress)
    else:
        report = _scan(format, found, source, cache_dir, workers, progress, malignant_birads)
    if roots is not None:
        confine_records(report.records, source, roots)
    return report


def _scan(format: str, tables: list[Path], source: Path, cache_dir: str | Path | None, workers: int | None,
          progress: Progress | None, malignant_birads: tuple[int, ...]) -> DataReport:
    if format == "cbis-ddsm":
        report = scan_cbis_ddsm(tables, source, cache_dir, workers, progress)
        if not report.usable and source.is_dir() and next(source.rglob("*.jpg"), None) is not None:
            report = dataclasses.replace(report, notes=(*report.notes, (
                "no DICOM of the CSVs was found, but JPEG files were: if this is CBIS-DDSM's JPEG re-release "
                "(jpeg/<SeriesInstanceUID>/*.jpg), put its csv/dicom_info.csv next to the jpeg/ folder, which maps "
                "each series to its JPEG")))
        return report
    if len(tables) != 1:
        raise ConfigError(f"{format} needs one table, found {len(tables)} ({', '.join(map(str, tables))}); "
                          "pass the one to use with --tables.")
    if format == "vindr":
        return scan_vindr_mammo(tables[0], source, malignant_birads, cache_dir, workers, progress)
    return scan_cmmd(tables[0], source, cache_dir, workers, progress)


def _find_tables(source: Path, patterns: tuple[str, ...]) -> list[Path]:
    for pattern in patterns:
        tables = sorted(source.rglob(pattern)) if source.is_dir() else []
        if tables:
            return tables
    raise ConfigError(f"No {' or '.join(patterns)} under {source}; put the data set's table there or pass it "
                      "with --tables.")


def verify_records(records: Sequence[ImageRecord], format: str, source: str, workers: int | None = None,
                   progress: Progress | None = None) -> DataReport:
    """A report on records that name their files: missing files, and DICOM headers that cannot be read."""
    start = time.perf_counter()
    present = [r for r in records if Path(r.path).is_file()]
    dicoms = [r.path for r in present if r.path.lower().endswith(DICOM_SUFFIXES)]
    errors = dict(zip(dicoms, header_rows(dicoms, workers, progress)["error"]))
    return DataReport(
        format, source, tuple(r for r in present if not errors.get(r.path)), len(records),
        missing=tuple(r.image_id for r in records if not Path(r.path).is_file()),
        unreadable=tuple(f"{r.image_id}: {errors[r.path]}" for r in present if errors.get(r.path)),
        files_indexed=len(dicoms), files_read=len(dicoms), index_seconds=time.perf_counter() - start)


def write_checked_manifest(report: DataReport, path: str | Path, seed: int = 0,
                           replace: bool = True) -> tuple[Path, dict[str, int]]:
    """Write the report's labelled images as a manifest with train/val/test splits
    (:func:`~hct.data.splits.complete_splits`) to a ``.csv`` ``path`` (an existing file only when
    ``replace``); returns the path and the images per split."""
    if Path(path).suffix.lower() != ".csv":
        raise ConfigError(f"{path} is not a .csv path; a manifest is a CSV file (e.g. data/cbis_ddsm.csv).")
    if not replace and Path(path).exists():
        raise ConfigError(f"{path} exists already; choose another path, or allow replacing it.")
    labelled = [r for r in report.records if r.label in (0, 1)]
    if not labelled:
        raise ConfigError(f"{report.source} has no usable labelled image to write; see the report above.")
    # absolute paths: a path relative to the working folder would be read relative to the manifest's
    labelled = [dataclasses.replace(r, path=os.path.abspath(r.path),
                                    finding_masks=tuple(map(os.path.abspath, r.finding_masks))) for r in labelled]
    records = complete_splits(labelled, seed)
    counts = dict(Counter(r.split or "none" for r in records))
    return write_manifest(records, path), counts
