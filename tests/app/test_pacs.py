"""The Images page's PACS source and the reading view's "Results as DICOM" under AppTest, against a real
Orthanc (tests/orthanc.py): search, open the study as the four-view exam, store its results, read them back."""

import pytest
from streamlit.testing.v1 import AppTest

from hct.data.pacs import Pacs, PacsConfig
from tests.orthanc import exams, orthanc, study_uid  # noqa: F401 (fixtures)
from tests.paths import HOME

pytestmark = pytest.mark.slow


@pytest.fixture()
def app(monkeypatch, tmp_path, orthanc):
    monkeypatch.setenv("HCT_APP_MAX_SIZE", "64x48")
    monkeypatch.setenv("HCT_APP_JOB_STORE", str(tmp_path / "jobs.sqlite"))
    monkeypatch.setenv("HCT_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.setenv("HCT_PACS_URL", orthanc.dicomweb)
    monkeypatch.setenv("HCT_PACS_USERNAME", orthanc.user)
    monkeypatch.setenv("HCT_PACS_PASSWORD", orthanc.password)
    at = AppTest.from_file(HOME, default_timeout=240)
    at.run()
    assert not at.exception
    at.switch_page("../pages/images.py").run()
    at.radio[0].set_value("PACS").run()
    assert not at.exception, at.exception
    return at


def test_search_open_and_store_the_results(app, orthanc, exams):
    app.text_input(key="pacs-patient").input("HCT-sfm-malign-0")
    app.button[0].click().run()  # the form's submit button
    assert not app.error, [e.value for e in app.error]
    table = app.dataframe[0].value
    assert list(table["views"]) == ["R-CC, L-CC, R-MLO, L-MLO"] and list(table["MG instances"]) == [4]
    assert list(table.columns) == ["study date", "description", "MG instances", "views"]  # no identity
    assert list(table["study date"]) == ["2017-03-12"]
    app.button(key="pacs-open").click().run()
    assert not app.exception, app.exception
    assert any("4 MG images" in s.value for s in app.success)
    items = app.session_state["hct_images"]
    assert len(items) == 4 and all(i.data is not None and i.record.exam_id.startswith("study:") for i in items)
    from hct.runtime.serving import Task

    from app import compute

    assert compute._engine(Task(lambda task: None), items).cache is None  # no ERF gradient of theirs on disk
    app.switch_page("../pages/attention.py").run()
    assert not app.exception, app.exception
    assert not app.error, [e.value for e in app.error]
    assert len(app.metric) == 2  # the four-view exam, read: each breast's score
    store = next(b for b in app.button if b.label == "Store in the PACS")
    assert not store.disabled
    store.click().run()
    assert not app.exception, app.exception
    stored = [s.value for s in app.success if s.value.startswith("Stored in the PACS")]
    assert stored and all(f"(series {n}): 4 objects" in stored[0] for n in (9701, 9702))
    assert "(series 9703): 1 object" in stored[0]
    pacs = Pacs(PacsConfig(url=orthanc.dicomweb, username=orthanc.user, password=orthanc.password))
    series = pacs.client.search_for_series(study_uid(exams, "sfm-malign-0"), fields=["SeriesNumber"])
    numbers = sorted(s["00200011"]["Value"][0] for s in series if s["00200011"]["Value"][0] >= 9700)
    assert numbers == [9701, 9702, 9703]


def test_a_pacs_fault_is_a_message_not_a_traceback(app, monkeypatch):
    monkeypatch.setenv("HCT_PACS_PASSWORD", "wrong")
    app.text_input(key="pacs-patient").input("HCT-sfm-malign-0")
    app.button[0].click().run()
    assert not app.exception
    assert any("refused the credentials (HTTP 401)" in e.value for e in app.error)


def test_without_a_configured_pacs_the_source_says_who_sets_it(monkeypatch, tmp_path):
    for name in ("HCT_PACS_URL", "HCT_PACS_CONFIG"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("HCT_APP_JOB_STORE", str(tmp_path / "jobs.sqlite"))
    at = AppTest.from_file(HOME, default_timeout=240)
    at.run()
    at.switch_page("../pages/images.py").run()
    at.radio[0].set_value("PACS").run()
    assert not at.exception
    assert any("No PACS is configured" in i.value for i in at.info)


def test_a_refused_store_is_named_on_the_page(app, monkeypatch):
    from hct.data.pacs import PacsError

    def refuse(self, datasets):
        raise PacsError(f"the PACS refused {len(datasets)} of {len(datasets)} objects: all of them; stored: none")

    monkeypatch.setattr(Pacs, "store", refuse)
    app.text_input(key="pacs-patient").input("HCT-sfm-benign-0")
    app.button[0].click().run()
    app.button(key="pacs-open").click().run()
    app.switch_page("../pages/attention.py").run()
    app.selectbox(key="pacs-results-scope").set_value("L-CC").run()
    next(b for b in app.button if b.label == "Store in the PACS").click().run()
    assert not app.exception, app.exception
    assert any(e.value.startswith("Storing in the PACS failed: the PACS refused 3 of 3 objects") for e in app.error)
