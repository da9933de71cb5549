"""``pacs:STUDY_UID`` (every MG instance of the study) or ``pacs:STUDY_UID/VIEW`` (``R-CC``, ``L-MLO``, ...,
or a SOP Instance UID) as image records: retrieved from the configured PACS into memory
(:mod:`hct.data.image.memory`), never written to disk."""

from __future__ import annotations

import logging

from hct.data.image.memory import hold
from hct.data.pacs.client import Pacs
from hct.data.pacs.config import PacsConfig, pacs_config
from hct.data.records import ImageRecord
from hct.data.sets.exams import uid_key
from hct.data.sets.manifest import make_record
from hct.errors import ConfigError

_LOG = logging.getLogger(__name__)

SCHEME = "pacs:"


def is_pacs(source: object) -> bool:
    return str(source).startswith(SCHEME)


def configured(config: PacsConfig | None = None) -> Pacs:
    """A client of ``config``, else of the configured PACS (``HCT_PACS_*``, ``HCT_PACS_CONFIG``)."""
    config = config or pacs_config()
    if config is None:
        raise ConfigError(
            "no PACS is configured: set HCT_PACS_URL (and HCT_PACS_USERNAME/HCT_PACS_PASSWORD or "
            "HCT_PACS_TOKEN), or HCT_PACS_CONFIG to a TOML file with a [pacs] section"
        )
    return Pacs(config)


def pacs_records(source: str, config: PacsConfig | None = None) -> list[ImageRecord]:
    """The records of ``pacs:STUDY_UID[/VIEW]``, their images retrieved into memory (progress on stderr)."""
    study, _, view = source[len(SCHEME) :].partition("/")
    if not study:
        raise ConfigError(f"{source!r}: give a study, pacs:STUDY_INSTANCE_UID (see `python -m hct pacs search`)")

    def progress(done: int, total: int) -> None:
        _LOG.info("retrieving from the PACS: %d/%d images", done, total)

    retrieved = configured(config).retrieve(study, progress=progress)
    for note in retrieved.skipped:
        _LOG.warning("skipped %s", note)
    exam = uid_key(study)
    records = []
    for n, (ref, data) in enumerate(retrieved.instances, 1):
        if view and view not in (ref.view_label, ref.sop_uid):
            continue
        name = f"{exam.removeprefix('study:')}/{n}-{ref.view_label}"
        records.append(
            make_record(image_id=name, path=hold(name, data), exam_id=exam, laterality=ref.laterality, view=ref.view)
        )
    if not records:
        views = ", ".join(ref.view_label for ref, _ in retrieved.instances)
        raise ConfigError(f"{source!r}: the study has no view {view!r}; it has {views}")
    return records
