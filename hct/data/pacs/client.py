"""A DICOMweb PACS (``dicomweb-client``): search studies (QIDO-RS), retrieve a study's mammograms
into memory (WADO-RS) and store derived objects (STOW-RS). Every fault is a :class:`PacsError` that
names it; the access log (logger ``hct.data.pacs``) records keyed study hashes, never patient identity."""

from __future__ import annotations

import datetime as dt
import logging
import os
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING

from hct.data.pacs.config import PacsConfig
from hct.data.sets.exams import FOUR_VIEWS, uid_key, view_name
from hct.errors import ComputationCancelled, HCTError

if TYPE_CHECKING:
    from pydicom.dataset import Dataset

log = logging.getLogger("hct.data.pacs")
logging.getLogger("dicomweb_client").setLevel(logging.WARNING)  # its INFO lines name studies by UID
ACCESS_LOG_ENV = "HCT_PACS_ACCESS_LOG"
SEARCH_LIMIT = 100  # studies one search lists
_STUDY_FIELDS = ("StudyDate", "StudyDescription", "AccessionNumber", "PatientID", "ModalitiesInStudy")
_INSTANCE_FIELDS = (
    "ImageLaterality",
    "Laterality",
    "ViewPosition",
    "Rows",
    "Columns",
    "BitsAllocated",
    "NumberOfFrames",
    "SOPClassUID",
)


def keep_access_log(path: str | os.PathLike) -> None:
    """Append the access log (searches, retrievals and stores, studies by keyed hash) to ``path``; once per file."""
    path = os.path.abspath(path)
    if any(getattr(h, "baseFilename", None) == path for h in log.handlers):
        return
    handler = logging.FileHandler(path, encoding="utf-8")
    handler.setFormatter(logging.Formatter("%(asctime)s %(message)s"))
    log.addHandler(handler)
    log.setLevel(logging.INFO)


class PacsError(HCTError):
    """The PACS could not do what was asked: unreachable, credentials refused, a fault, a non-DICOM answer."""


@dataclass(frozen=True)
class StudyQuery:
    """What to search: any of patient ID, accession number and a study date range (MG studies only)."""

    patient_id: str = ""
    accession: str = ""
    date_from: dt.date | None = None
    date_to: dt.date | None = None

    def filters(self) -> dict[str, str]:
        """The QIDO-RS query parameters."""
        if not (self.patient_id or self.accession or self.date_from or self.date_to):
            raise PacsError("give a patient ID, an accession number or a study date range to search the PACS")
        if self.date_from and self.date_to and self.date_from > self.date_to:
            raise PacsError(f"the date range ends ({self.date_to}) before it starts ({self.date_from})")
        filters = {"ModalitiesInStudy": "MG"}
        if self.patient_id:
            filters["PatientID"] = self.patient_id
        if self.accession:
            filters["AccessionNumber"] = self.accession
        if self.date_from or self.date_to:
            day = lambda d: d.strftime("%Y%m%d") if d else ""  # noqa: E731
            filters["StudyDate"] = f"{day(self.date_from)}-{day(self.date_to)}"
        return filters


@dataclass(frozen=True)
class InstanceRef:
    """One MG instance of a study: its UIDs, view and size as the PACS lists them."""

    study_uid: str
    series_uid: str
    sop_uid: str
    laterality: str = ""
    view: str = ""
    nbytes: int = 0  # rows x columns x bytes per pixel x frames (0 when the PACS does not say)

    @property
    def view_label(self) -> str:
        return view_name(self.laterality, self.view) if self.laterality and self.view else "?"


@dataclass(frozen=True)
class StudyRow:
    """A study found: what the results table shows, and its MG instances."""

    study_uid: str
    study_date: str
    description: str
    accession: str
    instances: tuple[InstanceRef, ...]

    @property
    def views(self) -> str:
        return ", ".join(sorted({i.view_label for i in self.instances}, key=_view_order))


@dataclass(frozen=True)
class Retrieved:
    """A study's MG instances in memory (``(ref, DICOM file bytes)``), and why any were skipped."""

    study_uid: str
    instances: tuple[tuple[InstanceRef, bytes], ...]
    skipped: tuple[str, ...] = ()


def _view_order(label: str) -> int:
    names = [view_name(*v) for v in FOUR_VIEWS]
    return names.index(label) if label in names else len(names)


def _value(item: dict, keyword: str) -> str:
    from pydicom.datadict import tag_for_keyword

    entry = item.get(f"{tag_for_keyword(keyword):08X}", {})
    values = entry.get("Value") or [""]
    value = values[0]
    return str(value.get("Alphabetic", "") if isinstance(value, dict) else value)


class Pacs:
    """The configured DICOMweb server (:class:`PacsConfig`)."""

    def __init__(self, config: PacsConfig) -> None:
        import requests
        from dicomweb_client.api import DICOMwebClient

        self.config = config
        if os.environ.get(ACCESS_LOG_ENV):
            keep_access_log(os.environ[ACCESS_LOG_ENV])
        session = requests.Session()
        if config.username:
            session.auth = (config.username, config.password)
        headers = {"Authorization": f"Bearer {config.token}"} if config.token else None
        self.client = DICOMwebClient(
            config.url,
            session=session,
            qido_url_prefix=config.qido_prefix,
            wado_url_prefix=config.wado_prefix,
            stow_url_prefix=config.stow_prefix,
            headers=headers,
            timeout=config.timeout,
        )
        self.client.set_http_retry_params(retry=False)

    @contextmanager
    def _errors(self, what: str) -> Iterator[None]:
        """Every fault of ``what`` as a :class:`PacsError` naming it."""
        import requests
        from pydicom.errors import InvalidDicomError

        where = f"the PACS at {self.config.url}"
        try:
            yield
        except (HCTError, ComputationCancelled):
            raise
        except requests.Timeout as err:
            raise PacsError(
                f"{what}: {where} did not answer within {self.config.timeout:g} s; try again, or ask "
                f"whoever runs the app to raise [pacs] timeout"
            ) from err
        except requests.ConnectionError as err:
            raise PacsError(
                f"{what}: {where} cannot be reached ({type(err).__name__}); check that it runs and "
                "that [pacs] url is right"
            ) from err
        except requests.HTTPError as err:
            code = err.response.status_code if err.response is not None else 0
            if code in (401, 403):
                raise PacsError(
                    f"{what}: {where} refused the credentials (HTTP {code}); check [pacs] username "
                    "and password, or token"
                ) from err
            reason = err.response.reason if err.response is not None else ""
            raise PacsError(f"{what}: {where} answered HTTP {code} {reason}".rstrip()) from err
        except (ValueError, KeyError, TypeError, InvalidDicomError, AttributeError) as err:
            raise PacsError(
                f"{what}: {where} answered something that is not DICOMweb ({type(err).__name__}: "
                f"{str(err)[:120]}); check that [pacs] url is the DICOMweb root"
            ) from err

    def search(self, query: StudyQuery, limit: int = SEARCH_LIMIT) -> list[StudyRow]:
        """The MG studies matching ``query`` (newest first), each with its MG instances listed."""
        filters = query.filters()
        with self._errors("searching the PACS"):
            found = self.client.search_for_studies(search_filters=filters, fields=list(_STUDY_FIELDS), limit=limit)
            rows = [
                StudyRow(
                    study_uid=_value(item, "StudyInstanceUID"),
                    study_date=_value(item, "StudyDate"),
                    description=_value(item, "StudyDescription"),
                    accession=_value(item, "AccessionNumber"),
                    instances=tuple(self.mg_instances(_value(item, "StudyInstanceUID"))),
                )
                for item in found
                if isinstance(item, dict)
            ]
        log.info(
            "search: %d studies found (patient id %s, accession %s, dates %s)",
            len(rows),
            *(
                "given" if value else "not given"
                for value in (query.patient_id, query.accession, query.date_from or query.date_to)
            ),
        )
        return sorted(rows, key=lambda r: r.study_date, reverse=True)

    def mg_instances(self, study_uid: str) -> list[InstanceRef]:
        """The study's MG instances, in the four-view hanging order."""
        with self._errors("listing the study's instances"):
            found = self.client.search_for_instances(
                study_instance_uid=study_uid, search_filters={"Modality": "MG"}, fields=list(_INSTANCE_FIELDS)
            )
        refs = []
        for item in found:
            if _value(item, "Modality") not in ("MG", ""):
                continue  # a server that ignores the filter
            laterality = (_value(item, "ImageLaterality") or _value(item, "Laterality")).upper()
            sizes = [int(_value(item, key) or 0) for key in ("Rows", "Columns", "BitsAllocated")]
            frames = int(_value(item, "NumberOfFrames") or 1)
            refs.append(
                InstanceRef(
                    study_uid,
                    _value(item, "SeriesInstanceUID"),
                    _value(item, "SOPInstanceUID"),
                    laterality if laterality in ("L", "R") else "",
                    {"CC": "CC", "MLO": "MLO"}.get(_value(item, "ViewPosition").upper(), ""),
                    sizes[0] * sizes[1] * (sizes[2] // 8) * frames,
                )
            )
        return sorted(refs, key=lambda r: _view_order(r.view_label))

    def retrieve(
        self,
        study_uid: str,
        progress: Callable[[int, int], None] | None = None,
        cancel: Callable[[], bool] | None = None,
    ) -> Retrieved:
        """The study's MG instances as DICOM file bytes, in memory, within ``max_instances`` and
        ``max_instance_mb`` (what is skipped is said); ``cancel`` is checked between instances."""
        from hct.data.image.dicom_write import write_dataset

        refs = self.mg_instances(study_uid)
        if not refs:
            raise PacsError(f"study {uid_key(study_uid)} has no MG (mammography) instance; choose another study")
        limit, bound = self.config.max_instance_mb * 2**20, self.config.max_instance_mb
        over = lambda ref, size: f"{ref.view_label} ({size / 2**20:.0f} MB, over the {bound} MB bound)"  # noqa: E731
        skipped = [over(r, r.nbytes) for r in refs if r.nbytes > limit]
        wanted = [r for r in refs if r.nbytes <= limit]
        if len(wanted) > self.config.max_instances:
            skipped.append(
                f"{len(wanted) - self.config.max_instances} instances over the bound of "
                f"{self.config.max_instances} per study"
            )
            wanted = wanted[: self.config.max_instances]
        done: list[tuple[InstanceRef, bytes]] = []
        for n, ref in enumerate(wanted, 1):
            if cancel is not None and cancel():
                raise ComputationCancelled(
                    f"retrieval cancelled after {n - 1} of {len(wanted)} instances; nothing was kept"
                )
            with self._errors(f"retrieving instance {n} of {len(wanted)} (nothing was kept)"):
                data = write_dataset(self.client.retrieve_instance(ref.study_uid, ref.series_uid, ref.sop_uid))
            if len(data) > limit:  # the PACS did not list its size
                skipped.append(over(ref, len(data)))
            else:
                done.append((ref, data))
            if progress is not None:
                progress(n, len(wanted))
        log.info("retrieved %s: %d MG instances, %d skipped", uid_key(study_uid), len(done), len(refs) - len(done))
        return Retrieved(study_uid, tuple(done), tuple(skipped))

    def store(self, datasets: Sequence[Dataset]) -> list[str]:
        """STOW-RS ``datasets`` into their study; the SOP instance UIDs stored. A refusal of any of them
        raises, naming which were stored and which were not."""
        import requests

        if not datasets:
            return []
        study = datasets[0].StudyInstanceUID
        with self._errors(f"storing {len(datasets)} objects"):
            try:
                answer = self.client.store_instances(list(datasets), study_instance_uid=study)
            except requests.HTTPError as err:  # 409: some refused, 400: all; the answer says which
                answer = _stow_answer(err.response)
                if answer is None:
                    raise
        failed = {
            str(i.get("ReferencedSOPInstanceUID", "")): int(i.get("FailureReason", 0))
            for i in answer.get("FailedSOPSequence", [])
        }
        stored = [str(i.get("ReferencedSOPInstanceUID", "")) for i in answer.get("ReferencedSOPSequence", [])]
        log.info("stored into %s: %d objects, %d refused", uid_key(study), len(stored), len(datasets) - len(stored))
        if len(stored) < len(datasets):
            names = {ds.SOPInstanceUID: _object_name(ds) for ds in datasets}
            refused = [
                f"{names[ds.SOPInstanceUID]}"
                + (f" (failure reason {failed[ds.SOPInstanceUID]:#06x})" if ds.SOPInstanceUID in failed else "")
                for ds in datasets
                if ds.SOPInstanceUID not in stored
            ]
            raise PacsError(
                f"the PACS refused {len(refused)} of {len(datasets)} objects: {', '.join(refused)}; "
                f"stored: {', '.join(names[uid] for uid in stored if uid in names) or 'none'}"
            )
        return stored


def _stow_answer(response) -> Dataset | None:
    """The STOW-RS answer of a refusal (DICOM JSON, whatever its content type says), or None without one."""
    from pydicom.dataset import Dataset

    if response is None or response.status_code not in (400, 409):
        return None
    try:
        answer = response.json()
        return Dataset.from_json(answer) if isinstance(answer, dict) else None
    except (ValueError, TypeError, KeyError):
        return None


def _object_name(ds: Dataset) -> str:
    """What to call a stored object: its series description and laterality."""
    return f"{ds.get('SeriesDescription', '') or ds.get('Modality', '')} {ds.get('Laterality', '')}".strip()
