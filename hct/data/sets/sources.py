"""Where images come from on the command line: ``samples``, a manifest, a phantom folder, a folder, or
``pacs:STUDY_UID`` (the configured PACS, :mod:`hct.data.pacs.sources`)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from hct.data.records import ImageRecord
from hct.data.sets.manifest import MANIFEST_NAME, is_manifest, make_record, read_manifest
from hct.data.sets.roots import confine, confine_records
from hct.data.sets.samples import builtin_samples
from hct.errors import ConfigError

IMAGE_SUFFIXES = (".dcm", ".dicom", ".png", ".tif", ".tiff")


def load_records(source: str | Path, roots: Sequence[Path] | None = None) -> list[ImageRecord]:
    """Records of ``source``: ``"samples"`` (the built-in CBIS-DDSM DICOMs), a manifest ``.csv``, a
    folder holding a ``manifest.csv`` (a phantom data set), or a folder of DICOM/PNG/TIFF images
    (unlabelled; laterality and view are read from each file when it is used), or ``pacs:STUDY_UID[/VIEW]``
    (retrieved into memory). With ``roots`` (the app's data roots, :mod:`hct.data.sets.roots`), ``source`` and
    every image it names are confined to them (the app has a PACS source of its own)."""
    if str(source) == "samples":
        return builtin_samples()
    if roots is not None:
        return confine_records(load_records(confine(source, roots)), source, roots)
    if str(source).startswith("pacs:"):
        from hct.data.pacs.sources import pacs_records

        return pacs_records(str(source))
    path = Path(source)
    if is_manifest(path):
        return read_manifest(path)
    if path.is_dir():
        files = sorted(p for p in path.rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES)
        if not files:
            raise ConfigError(f"no images ({', '.join(IMAGE_SUFFIXES)}) and no {MANIFEST_NAME} under {path}")
        return [make_record(image_id=str(p.relative_to(path).with_suffix("")), path=str(p)) for p in files]
    raise ConfigError(
        f"{str(source)!r} is not 'samples', a manifest .csv, a folder or pacs:STUDY_UID; give one of these "
        "(see `python -m hct phantom`)"
    )
