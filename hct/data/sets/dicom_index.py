"""An index of a folder's DICOM files by their headers: read once, in parallel, cached as Parquet.

Data set adapters match their tables to files through header values (UIDs, patient ids, laterality),
never through folder or file names, so every download layout and any reorganisation work alike.
The cache is refreshed incrementally: only files that are new or changed (size, mtime) are read again.
"""

from __future__ import annotations

import concurrent.futures
import hashlib
import math
import multiprocessing
import os
import threading
import time
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from hct.data.records import Box
from hct.errors import ConfigError
from hct.io import atomic_write

INDEX_VERSION = "1"
INDEX_NAME = ".hct-dicom-index.parquet"
DICOM_SUFFIXES = (".dcm", ".dicom")
HEADER_TAGS = [
    "StudyInstanceUID",
    "SeriesInstanceUID",
    "SOPInstanceUID",
    "PatientID",
    "ImageLaterality",
    "Laterality",
    "ViewPosition",
    "ViewCodeSequence",
    "SeriesDescription",
    "Rows",
    "Columns",
    "BitsAllocated",
    "SamplesPerPixel",
]
VIEW_CODES = {"399162004": "CC", "399368009": "MLO"}  # SNOMED CT codes of ViewCodeSequence (CMMD)
HEADER_COLUMNS = (
    "study_uid",
    "series_uid",
    "sop_uid",
    "subject_digest",
    "laterality",
    "view",
    "rows",
    "cols",
    "description",
    "error",
)
COLUMNS = ("path", "size", "mtime_ns", *HEADER_COLUMNS, "binary_box")
MASK_BATCH = 512  # masks decoded between two saves of the index (about 7 s on 2 cores at 4600x2900)
# below these many items, starting processes costs more than it saves: forked workers start in
# milliseconds, spawned ones re-import the library (torch) for seconds
FORK_MIN_ITEMS, SPAWN_MIN_ITEMS = 64, 5000

Progress = Callable[[int, int], None]


@dataclass
class DicomIndex:
    """The DICOM files under ``root``: one row per file (``COLUMNS``), ``path`` relative to ``root``.

    ``error`` is empty for a readable image header, else why the file cannot be used. The PatientID
    tag is kept only as ``subject_digest`` (:func:`subject_digest`), enough to match a data set's
    table (CMMD's ID1) without the index holding the id itself.
    """

    root: Path
    table: pd.DataFrame
    seconds: float  # time taken to build or refresh the index
    read: int  # files whose headers were read this time (the rest came from the cache)
    cache_file: Path | None

    def path_of(self, relative: str) -> str:
        return os.fspath(self.root / relative)

    def usable(self) -> pd.DataFrame:
        """Rows of readable image headers."""
        return self.table[self.table["error"] == ""]


def subject_digest(patient_id: str) -> str:
    """A digest of a PatientID value for matching ('' for none): the index never holds the id."""
    return hashlib.sha256(patient_id.strip().encode()).hexdigest()[:20] if patient_id.strip() else ""


def cache_file_for(root: Path, cache_dir: str | Path | None) -> Path:
    """Where the index of ``root`` is cached: in ``cache_dir`` when given, else next to the data when
    that folder is writable, else in ``~/.cache/hct``."""
    if cache_dir is None and os.access(root, os.W_OK):
        return root / INDEX_NAME
    digest = hashlib.sha256(os.fspath(root).encode()).hexdigest()[:16]
    folder = Path(cache_dir) if cache_dir is not None else Path.home() / ".cache" / "hct"
    return folder / f"dicom-index-{digest}.parquet"


def index_dicoms(
    root: str | Path, cache_dir: str | Path | None = None, workers: int | None = None, progress: Progress | None = None
) -> DicomIndex:
    """The index of every ``.dcm``/``.dicom`` file under ``root`` (hidden folders skipped), from the
    cache where files are unchanged; ``progress(done, total)`` follows the header reads."""
    start = time.perf_counter()
    root = Path(root).resolve()
    if not root.is_dir():
        raise ConfigError(f"{root} is not a folder; point at the folder holding the data set's images.")
    found = _walk(root)
    cache = cache_file_for(root, cache_dir)
    cached = _load_cache(cache)
    keep = found.merge(cached, on=["path", "size", "mtime_ns"]) if cached is not None else found.iloc[:0]
    todo = found[~found["path"].isin(keep["path"])].reset_index(drop=True)
    headers = header_rows([os.fspath(root / p) for p in todo["path"]], workers, progress)
    fresh = pd.concat([todo, headers], axis=1).assign(binary_box="")
    parts = [part[list(COLUMNS)] for part in (keep, fresh) if len(part)]
    table = pd.concat(parts, ignore_index=True).sort_values("path", ignore_index=True) if parts else fresh
    index = DicomIndex(root, table, 0.0, len(todo), cache)
    if len(todo) or cached is None or len(keep) != len(cached):
        _save(index)
    index.seconds = time.perf_counter() - start
    return index


def header_rows(paths: Sequence[str], workers: int | None = None, progress: Progress | None = None) -> pd.DataFrame:
    """The header columns (``HEADER_COLUMNS``) of DICOM files, one row per path, in order."""
    rows = parallel_map(_read_headers, list(paths), workers, progress)
    return pd.DataFrame(rows, columns=list(HEADER_COLUMNS)).astype({"rows": "int64", "cols": "int64"})


def binary_boxes(
    index: DicomIndex, paths: Sequence[str], workers: int | None = None, progress: Progress | None = None
) -> dict[str, Box | None]:
    """For index paths: the bounding box of the foreground of a binary image (two grey values; see
    :func:`read_binary_mask`), ``None`` for any other image. Pixels are decoded once; the answers are kept in the index cache,
    saved every ``MASK_BATCH`` files, so a check stopped midway (a cancel) keeps what it decoded."""
    table = index.table.set_index("path")
    todo = [p for p in dict.fromkeys(paths) if table.at[p, "binary_box"] == ""]
    for start in range(0, len(todo), MASK_BATCH):
        batch = todo[start : start + MASK_BATCH]
        answers = parallel_map(
            mask_boxes,
            [index.path_of(p) for p in batch],
            workers,
            progress and (lambda done, _, start=start: progress(start + done, len(todo))),
        )
        table.loc[batch, "binary_box"] = ["-" if box is None else " ".join(map(str, box)) for box in answers]
        index.table = table.reset_index()[list(COLUMNS)]
        _save(index)
    return {
        p: None if table.at[p, "binary_box"] == "-" else tuple(int(v) for v in table.at[p, "binary_box"].split())
        for p in paths
    }


def parallel_map(
    func: Callable[[list], list], items: list, workers: int | None = None, progress: Progress | None = None
) -> list:
    """``func`` applied to chunks of ``items`` (in worker processes when there are many), results in order."""
    workers = workers or len(os.sched_getaffinity(0))
    chunk = max(1, min(256, math.ceil(len(items) / (8 * workers))))
    chunks = [items[i : i + chunk] for i in range(0, len(items), chunk)]
    results: list[list] = [[] for _ in chunks]
    done = 0
    # fork is only safe without other threads (the app runs its pages in threads)
    fork = "fork" in multiprocessing.get_all_start_methods() and threading.active_count() == 1
    if workers > 1 and len(items) >= (FORK_MIN_ITEMS if fork else SPAWN_MIN_ITEMS):
        context = multiprocessing.get_context("fork" if fork else "spawn")
        pool = concurrent.futures.ProcessPoolExecutor(workers, mp_context=context)
        try:
            futures = {pool.submit(func, part): i for i, part in enumerate(chunks)}
            for future in concurrent.futures.as_completed(futures):
                results[futures[future]] = future.result()
                done += len(chunks[futures[future]])
                if progress:
                    progress(done, len(items))  # may raise to stop (a cancelled task): pending chunks are dropped
        finally:
            pool.shutdown(cancel_futures=True)
    else:
        for i, part in enumerate(chunks):
            results[i] = func(part)
            done += len(part)
            if progress:
                progress(done, len(items))
    return [row for part in results for row in part]


def _walk(root: Path) -> pd.DataFrame:
    rows, start = [], len(os.path.join(os.fspath(root), ""))
    for folder, dirs, files in os.walk(root):
        dirs[:] = [d for d in dirs if not d.startswith(".")]
        for name in files:
            if name.lower().endswith(DICOM_SUFFIXES):
                full = os.path.join(folder, name)
                try:
                    stat = os.stat(full)
                except OSError:  # a dangling link, or a file removed while walking: not there
                    continue
                rows.append((full[start:].replace(os.sep, "/"), stat.st_size, stat.st_mtime_ns))
    return pd.DataFrame(rows, columns=["path", "size", "mtime_ns"]).astype({"size": "int64", "mtime_ns": "int64"})


def _load_cache(file: Path) -> pd.DataFrame | None:
    import pyarrow.parquet as pq

    try:
        table = pq.read_table(file)
    except (OSError, ValueError):  # absent, unreadable or not Parquet: build afresh
        return None
    if (table.schema.metadata or {}).get(b"hct_index_version") != INDEX_VERSION.encode():
        return None
    frame = table.to_pandas()
    return frame[list(COLUMNS)] if set(COLUMNS) <= set(frame.columns) else None


def _save(index: DicomIndex) -> None:
    import pyarrow as pa
    import pyarrow.parquet as pq

    file = index.cache_file
    table = pa.Table.from_pandas(index.table, preserve_index=False)
    metadata = {**(table.schema.metadata or {}), b"hct_index_version": INDEX_VERSION.encode()}
    table = table.replace_schema_metadata(metadata)
    try:
        atomic_write(file, lambda tmp: pq.write_table(table, tmp))
    except OSError:  # a read-only place: the index still works, it is just not kept
        index.cache_file = None


def _read_headers(paths: list[str]) -> list[dict]:
    with warnings.catch_warnings():  # e.g. VinDr-Mammo's UIDs are md5 digests, which pydicom flags
        warnings.simplefilter("ignore", UserWarning)
        return [_read_header(path) for path in paths]


def _read_header(path: str) -> dict:
    import pydicom

    from hct.data.image.reading import _dicom_tags

    row = dict.fromkeys(HEADER_COLUMNS, "") | {"rows": 0, "cols": 0}
    try:
        with open(path, "rb") as handle:
            ds = pydicom.dcmread(handle, stop_before_pixels=True, specific_tags=HEADER_TAGS)
            pixels_at = handle.tell() + 8  # where the pixel values start, at the earliest
        rows, cols = int(ds.get("Rows") or 0), int(ds.get("Columns") or 0)
    except Exception as err:  # pydicom raises many kinds for corrupt or foreign files
        return row | {"error": f"not a readable DICOM file ({type(err).__name__}: {err})"}
    try:
        tags = _dicom_tags(ds)
        codes = [str(item.get("CodeValue", "")) for item in ds.get("ViewCodeSequence") or []]
        row.update(
            study_uid=str(ds.get("StudyInstanceUID", "")),
            series_uid=str(ds.get("SeriesInstanceUID", "")),
            sop_uid=str(ds.get("SOPInstanceUID", "")),
            subject_digest=subject_digest(str(ds.get("PatientID", ""))),
            laterality=tags["laterality"],
            rows=rows,
            cols=cols,
            description=str(ds.get("SeriesDescription", "")),
            view=tags["view"] or next((VIEW_CODES[c] for c in codes if c in VIEW_CODES), ""),
        )
    except Exception as err:  # noqa: BLE001 - a damaged element (e.g. an unknown VR) pydicom cannot convert
        return row | {"error": f"a damaged DICOM header ({type(err).__name__}: {str(err).splitlines()[0][:120]})"}
    syntax = ds.file_meta.get("TransferSyntaxUID")
    pixel_bytes = rows * cols * int(ds.get("SamplesPerPixel") or 1) * math.ceil(int(ds.get("BitsAllocated") or 8) / 8)
    size = os.path.getsize(path)
    uncompressed = syntax is not None and syntax.is_transfer_syntax and not syntax.is_compressed
    if not rows or not cols:
        row["error"] = "holds no image (no Rows/Columns)"
    elif uncompressed and size < pixels_at + pixel_bytes:
        row["error"] = f"truncated: its {size} bytes cannot hold {rows}x{cols} pixels"
    return row


def mask_boxes(paths: list[str]) -> list[Box | None]:
    """The box of each mask file's foreground (:func:`read_binary_mask`), None where there is none."""
    return [_box_of(read_binary_mask(path)) for path in paths]


def read_binary_mask(path: str | os.PathLike) -> np.ndarray | None:
    """The foreground (the brighter value as displayed) of a DICOM holding a binary image, else None
    (not binary, not an image, or not readable).

    Decoded with pydicom alone, in the stored integer type: no LUT is needed to tell two values apart,
    and a 5000x3000 mask takes about 50 ms instead of about 190 ms through :func:`read_mammogram`.
    A JPEG or PNG mask (CBIS-DDSM's JPEG re-release) is :func:`read_lossy_mask`'s."""
    import pydicom

    if Path(path).suffix.lower() in PICTURE_MASK_SUFFIXES:
        return read_lossy_mask(path)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)
            ds = pydicom.dcmread(path)
            pixels = ds.pixel_array
    except Exception:  # noqa: BLE001 - pydicom raises many kinds for corrupt or foreign files: not a mask
        return None
    if pixels.ndim != 2:
        return None
    low, high = pixels.min(), pixels.max()
    if low == high or np.count_nonzero(pixels == low) + np.count_nonzero(pixels == high) != pixels.size:
        return None
    return pixels == (low if ds.get("PhotometricInterpretation") == "MONOCHROME1" else high)


PICTURE_MASK_SUFFIXES = (".jpg", ".jpeg", ".png")


def read_lossy_mask(path: str | os.PathLike) -> np.ndarray | None:
    """The foreground of a mask saved as a picture, where lossy JPEG compression leaves it only nearly binary:
    the pixels above half the maximum, of which only the largest connected component is kept (JPEG ringing
    makes small specks); None for an unreadable, colour or blank picture."""
    from PIL import Image
    from scipy import ndimage

    try:
        with Image.open(path) as image:
            if image.mode not in ("L", "1", "I;16", "I"):
                return None
            pixels = np.asarray(image)
    except Exception:  # noqa: BLE001 - Pillow raises many kinds for corrupt or foreign files: not a mask
        return None
    high = float(pixels.max()) if pixels.size else 0.0
    if high <= 0:
        return None
    labels, count = ndimage.label(pixels > high / 2)
    if count == 0:
        return None
    sizes = np.bincount(labels.ravel())[1:]
    return labels == int(np.argmax(sizes)) + 1


def _box_of(foreground: np.ndarray | None) -> Box | None:
    if foreground is None:
        return None
    rows, cols = np.flatnonzero(foreground.any(axis=1)), np.flatnonzero(foreground.any(axis=0))
    return int(rows[0]), int(cols[0]), int(rows[-1]) + 1, int(cols[-1]) + 1
