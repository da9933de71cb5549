"""``python -m hct pacs search`` (the configured PACS's MG studies) and ``python -m hct pacs get`` (a study's
MG instances written to a folder: the one command that writes PACS images to disk)."""

from __future__ import annotations

import argparse
import datetime as dt
import sys
from pathlib import Path

from hct.errors import ConfigError


def _date(text: str) -> dt.date:
    try:
        return dt.date.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"a date is YYYY-MM-DD, got {text!r}") from None


def add_commands(subparsers: argparse._SubParsersAction) -> None:
    """Register ``pacs search`` and ``pacs get``."""
    pacs = subparsers.add_parser(
        "pacs",
        help="the hospital's PACS over DICOMweb (configured by HCT_PACS_URL/HCT_PACS_CONFIG)",
        description="Search and retrieve mammography studies of the PACS configured by whoever runs HCT Explorer "
        "(HCT_PACS_URL and HCT_PACS_USERNAME/PASSWORD or HCT_PACS_TOKEN, or HCT_PACS_CONFIG naming a TOML file "
        "with a [pacs] section). erf, table1, predict and explain also take pacs:STUDY_UID as their images.",
    )
    actions = pacs.add_subparsers(dest="action", required=True)
    search = actions.add_parser("search", help="list the MG studies matching a patient ID, accession or dates")
    search.add_argument("--patient-id", default="")
    search.add_argument("--accession", default="")
    search.add_argument("--date-from", type=_date, help="YYYY-MM-DD")
    search.add_argument("--date-to", type=_date, help="YYYY-MM-DD")
    search.set_defaults(func=run_search)
    get = actions.add_parser("get", help="write a study's MG instances (DICOM) to a folder")
    get.add_argument("study_uid", metavar="STUDY_UID")
    get.add_argument("--out", required=True, help="output folder")
    get.set_defaults(func=run_get)


def run_search(args: argparse.Namespace) -> int:
    """Print one line per study: its UID, date, MG instance count, views, description."""
    from hct.data.pacs import StudyQuery
    from hct.data.pacs.sources import configured

    rows = configured().search(StudyQuery(args.patient_id, args.accession, args.date_from, args.date_to))
    print("study_uid\tstudy_date\tmg_instances\tviews\tdescription")
    for row in rows:
        print(f"{row.study_uid}\t{row.study_date}\t{len(row.instances)}\t{row.views}\t{row.description}")
    print(f"{len(rows)} studies", file=sys.stderr)
    return 0


def run_get(args: argparse.Namespace) -> int:
    """Write the study's MG instances as ``OUT/<n>-<view>.dcm`` and print their paths."""
    from hct.data.pacs.sources import configured
    from hct.io import atomic_write

    out = Path(args.out)
    if out.exists() and not out.is_dir():
        raise ConfigError(f"--out {out} is a file; give a folder")

    def progress(done: int, total: int) -> None:
        print(f"\rretrieving: {done}/{total} images", end="\n" if done == total else "", file=sys.stderr, flush=True)

    retrieved = configured().retrieve(args.study_uid, progress=progress)
    for note in retrieved.skipped:
        print(f"warning: skipped {note}", file=sys.stderr)
    out.mkdir(parents=True, exist_ok=True)
    for n, (ref, data) in enumerate(retrieved.instances, 1):
        path = out / f"{n}-{ref.view_label}.dcm"
        atomic_write(path, data)
        print(path)
    return 0
