"""OPTIMAM (OMI-DB) adapter over the ``omidb`` package, with the paper's labelling rule.

Rule (per breast, :func:`label_exam`): malignant (1) when a biopsy or surgery of that breast is
malignant within 12 months after the screening exam; non-malignant (0) when instead a benign
biopsy falls within 12 months, or the breast has non-malignant imaging at least 24 months after
the exam with no malignant result up to it; otherwise excluded (``None``).
"""

from __future__ import annotations

import datetime
from dataclasses import dataclass
from pathlib import Path

from hct.data.records import ImageRecord
from hct.data.sets.manifest import make_record
from hct.errors import ConfigError

MALIGNANT_WINDOW_DAYS = 365  # 12 months
FOLLOW_UP_DAYS = 730  # 24 months
EVENT_KINDS = ("biopsy", "imaging")
OUTCOMES = ("malignant", "benign", "normal")
MARK_TYPES = {
    "mass": "mass",
    "calcifications": "calcifications",
    "suspicious_calcifications": "calcifications",
    "architectural_distortion": "architectural_distortion",
    "focal_asymmetry": "focal_asymmetry",
}


@dataclass(frozen=True)
class ClinicalEvent:
    """One dated result for one breast: a biopsy/surgery histology or an imaging read."""

    date: datetime.date
    kind: str  # 'biopsy' or 'imaging'
    outcome: str  # 'malignant', 'benign' or 'normal'

    def __post_init__(self) -> None:
        # a misspelt kind or outcome would silently change the label: refuse it
        if self.kind not in EVENT_KINDS or self.outcome not in OUTCOMES:
            raise ConfigError(
                f"clinical event ({self.kind!r}, {self.outcome!r}): kind must be one of {EVENT_KINDS} "
                f"and outcome one of {OUTCOMES}"
            )


def label_exam(exam_date: datetime.date, events: list[ClinicalEvent]) -> int | None:
    """The paper's label of a breast's screening exam: 1, 0, or None (excluded)."""

    def days(event: ClinicalEvent) -> int:
        return (event.date - exam_date).days

    biopsies = [e for e in events if e.kind == "biopsy" and 0 <= days(e) <= MALIGNANT_WINDOW_DAYS]
    if any(e.outcome == "malignant" for e in biopsies):
        return 1
    if any(e.outcome == "benign" for e in biopsies):
        return 0
    follow_ups = [e for e in events if e.kind == "imaging" and e.outcome != "malignant" and days(e) >= FOLLOW_UP_DAYS]
    if follow_ups:
        horizon = min(days(e) for e in follow_ups)
        if not any(e.outcome == "malignant" and 0 <= days(e) <= horizon for e in events):
            return 0
    return None


def _side_events(client) -> dict[str, list[ClinicalEvent]]:
    from omidb.events import SideOpinion

    outcome_of = {SideOpinion.OM: "malignant", SideOpinion.OB: "benign"}
    events: dict[str, list[ClinicalEvent]] = {"L": [], "R": []}
    for episode in client.episodes:
        if episode.events is None:
            continue
        for result in (episode.events.biopsy_wide, episode.events.biopsy_fine, episode.events.surgery):
            if result is None:
                continue
            date = min(result.dates) if result.dates else episode.opened_date
            for side, opinion in (("L", result.left_opinion), ("R", result.right_opinion)):
                if date is not None and opinion in outcome_of:
                    events[side].append(ClinicalEvent(date, "biopsy", outcome_of[opinion]))
        for screen in episode.events.screening:
            for side, data, opinion in (
                ("L", screen.left, screen.left_opinion),
                ("R", screen.right, screen.right_opinion),
            ):
                date = data.date if data is not None and data.date else (screen.dates[0] if screen.dates else None)
                if date is not None:
                    outcome = "malignant" if opinion == SideOpinion.OM else "normal"
                    events[side].append(ClinicalEvent(date, "imaging", outcome))
    return events


def _mark_box_and_types(mark) -> tuple[tuple[int, int, int, int], list[str]]:
    box = mark.boundingBox
    row0, row1 = sorted((box.y1, box.y2))
    col0, col1 = sorted((box.x1, box.x2))
    types = [kind for flag, kind in MARK_TYPES.items() if getattr(mark, flag)]
    return (row0, col0, max(row1, row0 + 1), max(col1, col0 + 1)), types


def read_optimam(data_dir: str | Path, image_dir: str | Path | None = None) -> list[ImageRecord]:
    """Labelled records of an OMI-DB export (``data_dir``: per-client NBSS/IMAGEDB JSON and the
    per-image DICOM-header JSON; ``image_dir``: ``<client>/<study>/<image>.dcm``). Images whose
    breast the rule excludes, or whose laterality/view is not L/R and CC/MLO, are left out."""
    try:
        import omidb
        from omidb.utilities import try_image_attribute
    except ImportError as err:
        raise ConfigError("Reading OPTIMAM needs the `omidb` package: pip install omidb.") from err
    if not Path(data_dir).is_dir():
        raise ConfigError(f"OMI-DB data folder {data_dir} does not exist.")
    image_dir = Path(image_dir if image_dir is not None else data_dir)
    records = []
    for client in sorted(omidb.DB(data_dir, image_dir), key=lambda c: c.id):
        side_events = _side_events(client)
        for episode in client.episodes:
            for study in episode.studies:
                if study.date is None:
                    continue
                for series in study.series:
                    for image in series.images:
                        laterality = str(try_image_attribute(image, "00200062") or "")
                        view = str(try_image_attribute(image, "00185101") or "")
                        if laterality not in ("L", "R") or view not in ("CC", "MLO"):
                            continue
                        label = label_exam(study.date, side_events[laterality])
                        if label is None:
                            continue
                        marks = [_mark_box_and_types(m) for m in image.marks]
                        records.append(
                            make_record(
                                image_id=image.id,
                                path=str(image_dir / client.id / study.id / f"{image.id}.dcm"),
                                patient_id=client.id,
                                exam_id=study.id,
                                laterality=laterality,
                                view=view,
                                label=label,
                                finding_types=tuple(dict.fromkeys(t for _, types in marks for t in types)),
                                finding_boxes=[box for box, _ in marks],
                            )
                        )
    return records
