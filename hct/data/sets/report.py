"""What a data set adapter found on disk: the usable records, and what is missing or unreadable."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass

from hct.data.records import ImageRecord

LABEL_NAMES = {1: "malignant", 0: "non-malignant", -1: "unknown"}


@dataclass(frozen=True)
class DataReport:
    """A data set checked against its files. ``missing`` and ``unreadable`` name what the data set's
    tables list but cannot be used (``"<id>: <reason>"`` for unreadable ones); ``notes`` say what
    else a user should know (masks not found, rows resolved by content, images without a label).
    Never holds a patient-identifying DICOM tag: ids come from the data set's own tables."""

    format: str
    source: str
    records: tuple[ImageRecord, ...]
    listed: int  # how many ``unit`` the data set's tables list
    unit: str = "images"  # what ``listed`` and ``missing`` count: images, or breasts (CMMD)
    missing: tuple[str, ...] = ()
    unreadable: tuple[str, ...] = ()
    notes: tuple[str, ...] = ()
    files_indexed: int = 0
    files_read: int = 0  # headers read this time; the others came from the index cache
    index_seconds: float = 0.0

    @property
    def usable(self) -> bool:
        """Whether at least one image was found and can be read."""
        return bool(self.records)

    def counts(self) -> dict[str, dict[str, int]]:
        """Found images by label, finding type and split (each image once per finding type)."""
        return {
            "label": dict(Counter(LABEL_NAMES[r.label] for r in self.records)),
            "finding type": dict(Counter(t for r in self.records for t in r.finding_types)),
            "split": dict(Counter(r.split or "none" for r in self.records)),
            "boxes": {
                "with": sum(bool(r.finding_boxes) for r in self.records),
                "without": sum(not r.finding_boxes for r in self.records),
            },
        }

    def summary(self) -> str:
        """One line: usable images of those listed, how many are missing and unreadable."""
        return (
            f"{len(self.records):,} usable images ({self._listed()}); missing {self.unit}: {len(self.missing):,}; "
            f"unreadable images: {len(self.unreadable):,}"
        )

    def _listed(self) -> str:
        return f"of {self.listed:,} listed" if self.unit == "images" else f"the table lists {self.listed:,} {self.unit}"

    def lines(self, examples: int = 5) -> list[str]:
        """The report as text lines, naming up to ``examples`` missing and unreadable items."""
        lines = [f"{self.format} at {self.source}", f"usable images: {len(self.records):,} ({self._listed()})"]
        for name, items in ((f"missing {self.unit}", self.missing), ("unreadable images", self.unreadable)):
            shown = "; ".join(items[:examples]) + ("; ..." if len(items) > examples else "")
            lines.append(f"{name}: {len(items):,}" + (f", e.g. {shown}" if items else ""))
        if self.files_indexed:
            cached = self.files_indexed - self.files_read
            lines.append(
                f"DICOM headers: {self.files_indexed:,} files in {self.index_seconds:.1f} s"
                + (f" ({cached:,} from the index cache)" if cached else "")
            )
        for name, counts in self.counts().items():
            if counts:
                lines.append(f"by {name}: " + ", ".join(f"{key} {value:,}" for key, value in sorted(counts.items())))
        lines += [f"note: {note}" for note in self.notes]
        if not self.usable:
            lines.append("nothing usable was found: check the folder and the format (README, 'Your own data')")
        return lines
