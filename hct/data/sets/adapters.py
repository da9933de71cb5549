"""One interface for the data sets a user downloads: an :class:`Adapter` per format name, in ``ADAPTERS``.

Each adapter scans a download into a :class:`~hct.data.sets.report.DataReport` through the same call,
``ADAPTERS[format].scan(source, tables, options, progress)``; :func:`hct.data.sets.check.check_data` is the
one dispatcher (it confines paths to the app's data roots, finds the tables and makes ``cancel=`` work),
used by ``python -m hct data check`` and the Images page. ``hct.data.options.FORMATS`` is the same list of
names, kept light for the command line's parser.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from pathlib import Path

from hct.data.records import ImageRecord
from hct.data.sets.cbis_ddsm import scan_cbis_ddsm
from hct.data.sets.cbis_ddsm_jpeg import find_jpeg_release, scan_cbis_ddsm_jpeg
from hct.data.sets.cmmd import scan_cmmd
from hct.data.sets.dicom_index import DICOM_SUFFIXES, Progress, header_rows
from hct.data.sets.manifest import MANIFEST_NAME, read_manifest
from hct.data.sets.optimam import read_optimam
from hct.data.sets.report import DataReport
from hct.data.sets.roots import confine, confine_records
from hct.data.sets.vindr import scan_vindr_mammo
from hct.errors import ConfigError


@dataclass(frozen=True)
class ScanOptions:
    """What some adapters take beyond the source and its tables (the others ignore it)."""

    images: Path | None = None  # OPTIMAM: the image folder, when not the data folder
    cache_dir: str | Path | None = None  # the DICOM header index's cache
    workers: int | None = None
    malignant_birads: tuple[int, ...] = (5,)  # VinDr-Mammo: the BI-RADS read as malignant
    roots: Sequence[Path] | None = None  # the app's data roots: records are confined before a file is read


Scan = Callable[[Path, list[Path], ScanOptions, "Progress | None"], DataReport]


@dataclass(frozen=True)
class Adapter:
    """A data set format: the tables looked for under its source (the first pattern found; none when it
    reads none), how many tables it takes (``None``: any number), its ``scan``, what its source is (for the
    message when it does not exist) and the suffixes of a source that is a file rather than a folder."""

    format: str
    scan: Scan
    table_patterns: tuple[str, ...] = ()
    tables: int | None = None  # 1 or None
    wanted: str = "give the folder the data set was downloaded to"
    file_suffixes: tuple[str, ...] = ()

    def find_tables(self, source: Path, given: Sequence[str | Path] = ()) -> list[Path]:
        """The tables to read: ``given``, else the first pattern's matches under ``source``."""
        if not self.table_patterns:
            return []
        found = [Path(t) for t in given] or _find_tables(source, self.table_patterns)
        if self.tables is not None and len(found) != self.tables:
            raise ConfigError(
                f"{self.format} needs one table, found {len(found)} "
                f"({', '.join(map(str, found))}); pass the one to use with --tables."
            )
        return found


def _find_tables(source: Path, patterns: tuple[str, ...]) -> list[Path]:
    for pattern in patterns:
        tables = sorted(source.rglob(pattern)) if source.is_dir() else []
        if tables:
            return tables
    raise ConfigError(
        f"No {' or '.join(patterns)} under {source}; put the data set's table there or pass it with --tables."
    )


def verify_records(
    records: Sequence[ImageRecord],
    format: str,
    source: str,
    workers: int | None = None,
    progress: Progress | None = None,
) -> DataReport:
    """A report on records that name their files: missing files, and DICOM headers that cannot be read."""
    start = time.perf_counter()
    present = [r for r in records if Path(r.path).is_file()]
    dicoms = [r.path for r in present if r.path.lower().endswith(DICOM_SUFFIXES)]
    errors = dict(zip(dicoms, header_rows(dicoms, workers, progress)["error"]))
    return DataReport(
        format,
        source,
        tuple(r for r in present if not errors.get(r.path)),
        len(records),
        missing=tuple(r.image_id for r in records if not Path(r.path).is_file()),
        unreadable=tuple(f"{r.image_id}: {errors[r.path]}" for r in present if errors.get(r.path)),
        files_indexed=len(dicoms),
        files_read=len(dicoms),
        index_seconds=time.perf_counter() - start,
    )


def _confined(records: list[ImageRecord], source: Path, options: ScanOptions) -> list[ImageRecord]:
    return records if options.roots is None else confine_records(records, source, options.roots)


def _manifest(source: Path, tables: list[Path], options: ScanOptions, progress: Progress | None) -> DataReport:
    records = _confined(read_manifest(source), source, options)
    return verify_records(records, "manifest", str(source), options.workers, progress)


def _optimam(source: Path, tables: list[Path], options: ScanOptions, progress: Progress | None) -> DataReport:
    records = _confined(read_optimam(source, options.images), source, options)
    return verify_records(records, "optimam", str(source), options.workers, progress)


def _cbis_ddsm(source: Path, tables: list[Path], options: ScanOptions, progress: Progress | None) -> DataReport:
    """The TCIA DICOMs, or the JPEG re-release when its ``dicom_info.csv`` is under ``source``."""
    info = find_jpeg_release(source)
    if info is not None:
        info = info if options.roots is None else confine(info, options.roots)
        return scan_cbis_ddsm_jpeg(tables, info, options.workers, progress)
    report = scan_cbis_ddsm(tables, source, options.cache_dir, options.workers, progress)
    if not report.usable and source.is_dir() and next(source.rglob("*.jpg"), None) is not None:
        report = replace(
            report,
            notes=(
                *report.notes,
                (
                    "no DICOM of the CSVs was found, but JPEG files were: if this is CBIS-DDSM's JPEG re-release "
                    "(jpeg/<SeriesInstanceUID>/*.jpg), put its csv/dicom_info.csv next to the jpeg/ folder, which maps "
                    "each series to its JPEG"
                ),
            ),
        )
    return report


def _vindr(source: Path, tables: list[Path], options: ScanOptions, progress: Progress | None) -> DataReport:
    return scan_vindr_mammo(tables[0], source, options.malignant_birads, options.cache_dir, options.workers, progress)


def _cmmd(source: Path, tables: list[Path], options: ScanOptions, progress: Progress | None) -> DataReport:
    return scan_cmmd(tables[0], source, options.cache_dir, options.workers, progress)


ADAPTERS: dict[str, Adapter] = {
    a.format: a
    for a in (
        Adapter("cbis-ddsm", _cbis_ddsm, ("*case_description*.csv",)),
        Adapter("vindr", _vindr, ("finding_annotations.csv",), tables=1),
        Adapter("cmmd", _cmmd, ("CMMD_clinicaldata*.xlsx", "CMMD_clinicaldata*.csv"), tables=1),
        Adapter("optimam", _optimam),
        Adapter(
            "manifest",
            _manifest,
            wanted=f"give a manifest CSV, or a folder holding {MANIFEST_NAME}",
            file_suffixes=(".csv",),
        ),
    )
}


def adapter(format: str) -> Adapter:
    """The adapter of ``format`` (a name in ``ADAPTERS``)."""
    if format not in ADAPTERS:
        raise ConfigError(f"Unknown data set format {format!r}; use one of {', '.join(ADAPTERS)}.")
    return ADAPTERS[format]
