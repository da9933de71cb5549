"""Data set adapters (manifest, OMI-DB) on fixtures in each set's real layout; the public data sets as
downloaded (CBIS-DDSM, VinDr-Mammo, CMMD) are tested in tests/data/sets/test_public_sets.py."""

import datetime
from pathlib import Path

import pytest

from hct.data import (
    ClinicalEvent,
    builtin_samples,
    label_exam,
    make_record,
    read_manifest,
    read_optimam,
    write_manifest,
)
from hct.errors import ConfigError
from tests.paths import FIXTURES

EXAM = datetime.date(2020, 1, 1)


def days(n: int) -> datetime.date:
    return EXAM + datetime.timedelta(days=n)


@pytest.mark.parametrize(
    "events, label",
    [
        ([ClinicalEvent(days(200), "biopsy", "malignant")], 1),
        ([ClinicalEvent(days(200), "biopsy", "benign"), ClinicalEvent(days(300), "biopsy", "malignant")], 1),
        ([ClinicalEvent(days(400), "biopsy", "malignant")], None),  # malignant, but after 12 months
        ([ClinicalEvent(days(100), "biopsy", "benign")], 0),
        ([ClinicalEvent(days(740), "imaging", "normal")], 0),
        ([ClinicalEvent(days(700), "imaging", "normal")], None),  # follow-up under 24 months
        ([ClinicalEvent(days(500), "biopsy", "malignant"), ClinicalEvent(days(740), "imaging", "normal")], None),
        ([ClinicalEvent(days(-30), "biopsy", "malignant")], None),  # before the exam
        ([], None),
    ],
)
def test_label_exam_follows_the_paper_rule(events, label):
    assert label_exam(EXAM, events) == label


def test_manifest_round_trip_with_relative_paths(tmp_path):
    records = [
        make_record(
            image_id="a",
            path=str(tmp_path / "img" / "a.dcm"),
            patient_id="p1",
            laterality="L",
            view="CC",
            label=1,
            finding_types=("mass", "calcifications"),
            finding_boxes=[(1, 2, 31, 42)],
            split="train",
            finding_masks=[str(tmp_path / "img" / "a-mask.dcm")],
        ),
        make_record(image_id="b", path="/elsewhere/b.png", patient_id="p2", label=0),
    ]
    path = write_manifest(records, tmp_path / "manifest.csv")
    assert "img/a.dcm" in path.read_text() and "img/a-mask.dcm" in path.read_text()
    assert str(tmp_path) not in path.read_text()
    assert read_manifest(path) == records
    assert records[0].finding_size == pytest.approx((30 * 40) ** 0.5)


def test_a_data_set_folder_is_read_through_its_manifest(tmp_path):
    """A folder holding ``manifest.csv`` is a manifest, for ``load_records`` and the manifest adapter alike."""
    from hct.data import check_data, load_records
    from hct.data.sets.manifest import is_manifest

    records = [make_record(image_id="a", path=str(tmp_path / "a.png"), label=0)]
    write_manifest(records, tmp_path / "manifest.csv")
    assert is_manifest(tmp_path) and is_manifest(tmp_path / "manifest.csv")
    assert not is_manifest(tmp_path / "elsewhere") and not is_manifest(tmp_path / "a.png")
    assert read_manifest(tmp_path) == load_records(tmp_path) == records
    assert check_data(tmp_path, "manifest").missing == ("a",)


def test_manifest_rejects_bad_values(tmp_path):
    (tmp_path / "m.csv").write_text("image_id,path,laterality\nx,x.dcm,Q\n")
    with pytest.raises(ConfigError, match="laterality"):
        read_manifest(tmp_path / "m.csv")
    with pytest.raises(ConfigError, match="does not exist"):
        read_manifest(tmp_path / "missing.csv")


def test_optimam_through_omidb():
    records = {r.image_id: r for r in read_optimam(FIXTURES / "data" / "omidb" / "data", "/omidb")}
    # optm1: left breast malignant biopsy 36 days after the 2015 exam; right breast normal 2017 follow-up;
    # the 2017 exam has no follow-up (excluded). optm2: right benign biopsy; left has no follow-up (excluded).
    assert {k: v.label for k, v in records.items()} == {
        "1.2.826.1.1.1": 1,
        "1.2.826.1.2.1": 1,
        "1.2.826.1.3.1": 0,
        "1.2.826.3.1.1": 0,
    }
    marked = records["1.2.826.1.1.1"]
    assert marked.finding_types == ("mass",) and marked.finding_boxes == ((300, 120, 380, 180),)
    assert marked.path == "/omidb/optm1/1.2.826.1/1.2.826.1.1.1.dcm" and marked.patient_id == "optm1"


def test_builtin_samples_records():
    records = builtin_samples()
    assert [r.patient_id for r in records] == ["sfm-benign-0"] * 4 + ["sfm-malign-0"] * 4
    assert {(r.laterality, r.view) for r in records[:4]} == {("L", "CC"), ("L", "MLO"), ("R", "CC"), ("R", "MLO")}
    assert all(Path(r.path).is_file() for r in records)


def test_clinical_event_refuses_unknown_kind_or_outcome():
    import datetime

    from hct.data import ClinicalEvent
    from hct.errors import ConfigError

    with pytest.raises(ConfigError, match="outcome one of"):
        ClinicalEvent(datetime.date(2020, 1, 1), "biopsy", "malignent")


def test_the_parser_offers_exactly_the_registered_formats():
    from hct.data import ADAPTERS, FORMATS

    assert FORMATS == tuple(ADAPTERS)
    assert all(name == a.format for name, a in ADAPTERS.items())


def test_check_data_dispatches_to_the_registered_adapter(tmp_path, monkeypatch):
    from hct.data import ADAPTERS, Adapter, DataReport, check_data
    from hct.errors import ComputationCancelled

    (tmp_path / "x_tables.csv").write_text("a\n")
    calls = []

    def scan(source, tables, options, progress):
        calls.append((source, tables, options.workers, options.malignant_birads))
        if progress is not None:
            progress(1, 2)
        return DataReport("fake", str(source), (), 2)

    monkeypatch.setitem(ADAPTERS, "fake", Adapter("fake", scan, ("*_tables.csv",), tables=1))
    report = check_data(tmp_path, "fake", workers=3, malignant_birads=(4,))
    assert report.format == "fake" and calls == [(tmp_path, [tmp_path / "x_tables.csv"], 3, (4,))]
    with pytest.raises(ComputationCancelled):  # cancel= reaches every adapter through its progress
        check_data(tmp_path, "fake", cancel=lambda: True)
    (tmp_path / "y_tables.csv").write_text("a\n")
    with pytest.raises(ConfigError, match="fake needs one table, found 2"):
        check_data(tmp_path, "fake")
    with pytest.raises(ConfigError, match=r"Unknown data set format 'nope'; use one of cbis-ddsm, .*fake"):
        check_data(tmp_path, "nope")


def test_a_manifest_through_the_dispatcher_names_missing_files(tmp_path):
    from hct.data import check_data

    sample = builtin_samples()[0]
    write_manifest([sample, make_record(image_id="gone", path=str(tmp_path / "gone.dcm"))], tmp_path / "m.csv")
    report = check_data(tmp_path / "m.csv", "manifest")
    assert [r.image_id for r in report.records] == [sample.image_id] and report.missing == ("gone",)
