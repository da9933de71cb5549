"""End to end in a real browser against a real Orthanc: the Images page's PACS source searches by patient
ID, opens the study, and the Attention page reads it as the four-view exam with its overlays drawn."""

from pathlib import Path

import pytest
from playwright.sync_api import expect

from tests.e2e.test_app_browser import CHROMIUM, SHOTS, page, run_app  # noqa: F401 (fixture)
from tests.orthanc import exams, orthanc  # noqa: F401 (fixtures)

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(not Path(CHROMIUM).exists(), reason=f"{CHROMIUM} is absent (apt-get install chromium)"),
]


@pytest.fixture(scope="module")
def pacs_server(tmp_path_factory, orthanc):
    """The app as the README starts it, with the test Orthanc as its PACS (environment variables)."""
    yield from run_app(
        tmp_path_factory,
        HCT_PACS_URL=orthanc.dicomweb,
        HCT_PACS_USERNAME=orthanc.user,
        HCT_PACS_PASSWORD=orthanc.password,
    )


def test_pacs_study_opens_as_the_four_view_exam(pacs_server, page):  # noqa: F811
    page.goto(f"{pacs_server}/images")
    expect(page.get_by_role("heading", name="Images", exact=True)).to_be_visible(timeout=60_000)
    page.get_by_text("PACS", exact=True).click()
    page.get_by_label("Patient ID").fill("HCT-sfm-malign-0")
    page.get_by_role("button", name="Search the PACS").click()
    expect(page.get_by_text("R-CC, L-CC, R-MLO, L-MLO").first).to_be_attached(timeout=60_000)  # the results table
    page.get_by_role("button", name="Open this study").click()
    expect(page.get_by_text("4 MG images of the study are held in this session")).to_be_visible(timeout=120_000)
    page.screenshot(path=SHOTS / "images_pacs.png", full_page=True)
    page.get_by_text("Read the exam on the Attention page").click()  # in-app navigation: the session's images stay
    expect(page.get_by_role("heading", name="Attention", exact=True)).to_be_visible(timeout=60_000)
    captions = page.get_by_text("P(malignant)")
    expect(captions).to_have_count(4, timeout=300_000)
    assert [text.split(" · ")[0] for text in captions.all_inner_texts()] == ["R-CC", "L-CC", "R-MLO", "L-MLO"]
    expect(page.locator(".js-plotly-plot")).to_have_count(4)  # each view with its overlay
    assert all(name.startswith("PACS ") for name in (t.split(" · ")[-2] for t in captions.all_inner_texts()))
    expect(page.get_by_text("Results as DICOM: store into the PACS, or download")).to_be_visible()
    assert page.locator("[data-testid='stException']").count() == 0
    page.wait_for_timeout(1500)
    page.screenshot(path=SHOTS / "attention_pacs_exam.png", full_page=True)
