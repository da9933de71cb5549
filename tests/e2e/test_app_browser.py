"""End to end in a real browser: start the app as the README says, compute an ERF of two models and Table 1
on the built-in samples, reject bad uploads, click to query attention, read a four-view exam, and save a
screenshot of every page."""

import os
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest
from playwright.sync_api import expect, sync_playwright

from hct.data import builtin_samples
from tests.paths import REPO

CHROMIUM = "/usr/bin/chromium"
SHOTS = REPO / "artifacts" / "screenshots"
PAGES = ["models", "images", "erf_explorer", "attention", "breakdowns", "training"]

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(not Path(CHROMIUM).exists(), reason=f"{CHROMIUM} is absent (apt-get install chromium)"),
]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def run_app(tmp_path_factory, **extra_env: str):
    """The app as the README starts it (``streamlit run app/Home.py``) at the tests' size, on a free port:
    yields its URL, stops it after."""
    port = free_port()
    env = dict(
        os.environ,
        HCT_APP_MAX_SIZE="128x96",
        HCT_CACHE_DIR=str(tmp_path_factory.mktemp("cache")),
        HCT_APP_JOB_STORE=str(tmp_path_factory.mktemp("jobs") / "jobs.sqlite"),
        **extra_env,
    )
    streamlit = Path(sys.executable).parent / "streamlit"
    process = subprocess.Popen(
        [str(streamlit), "run", "app/Home.py", "--server.port", str(port), "--server.headless", "true"],
        cwd=REPO,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    url = f"http://127.0.0.1:{port}"
    for _ in range(120):
        try:
            urllib.request.urlopen(f"{url}/_stcore/health", timeout=1)
            break
        except OSError:
            time.sleep(0.5)
    else:
        process.kill()
        pytest.fail(f"streamlit did not start: {process.stdout.read().decode()[-2000:]}")
    yield url
    process.terminate()
    process.wait(timeout=20)


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    yield from run_app(tmp_path_factory)


@pytest.fixture()
def page():
    """A page of headless Debian chromium, driven by Playwright (never a downloaded browser)."""
    SHOTS.mkdir(parents=True, exist_ok=True)
    with sync_playwright() as p:
        browser = p.chromium.launch(
            executable_path=CHROMIUM,
            args=["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking"],
        )
        yield browser.new_page(viewport={"width": 1500, "height": 2200})
        browser.close()


def test_erf_of_two_models_in_the_browser(server, page):
    page.goto(server)
    expect(page.get_by_role("heading", name="HCT Explorer")).to_be_visible(timeout=60_000)
    page.wait_for_timeout(1500)
    page.screenshot(path=SHOTS / "home.png", full_page=True)

    page.goto(f"{server}/erf_explorer")
    expect(page.get_by_role("heading", name="ERF explorer")).to_be_visible(timeout=60_000)
    page.get_by_label("N images").fill("2")
    page.get_by_role("button", name="Compute ERF").click()
    expect(page.locator(".js-plotly-plot").first).to_be_visible(timeout=180_000)
    curves = page.locator(".js-plotly-plot .scatterlayer .trace")
    expect(curves.first).to_be_attached(timeout=60_000)
    assert curves.count() >= 4  # two models x (band + curve) on the first curve plot at least
    page.wait_for_timeout(1500)
    page.screenshot(path=SHOTS / "erf_explorer.png", full_page=True)

    for name in PAGES:
        if name == "erf_explorer":
            continue
        page.goto(f"{server}/{name}")
        page.wait_for_timeout(4000 if name in ("attention", "images") else 2000)
        page.wait_for_selector("[data-testid='stStatusWidget']", state="detached", timeout=120_000)
        page.screenshot(path=SHOTS / f"{name}.png", full_page=True)


def test_table1_action_in_the_browser(server, page):
    """The Table 1 action at the test's tiny resolution: the grid (rows all / right / left, ERF and Sqrt ERF
    across rows and columns, both models), the metrics with the right - left rows, and the zip download."""
    page.goto(f"{server}/erf_explorer")
    expect(page.get_by_role("heading", name="Table 1 / Table A2")).to_be_visible(timeout=120_000)
    page.get_by_label("N per row").fill("2")
    page.get_by_role("button", name="Compute Table 1").click()
    grid = page.locator(".js-plotly-plot").filter(has=page.get_by_text("laid out as the paper's Table 1"))
    expect(grid).to_be_visible(timeout=300_000)
    assert grid.locator(".subplot").count() == 12 and grid.locator(".scatterlayer .trace").count() >= 2 * 12
    expect(page.get_by_text("right - left").first).to_be_attached(timeout=60_000)  # a cell of the metrics grid
    with page.expect_download(timeout=120_000) as download:
        page.get_by_role("button", name="Table 1: PNG, HTML, CSV and maps (zip)").click()
    assert download.value.suggested_filename == "table1.zip"
    assert page.locator("[data-testid='stException']").count() == 0
    page.wait_for_timeout(1500)
    page.screenshot(path=SHOTS / "erf_explorer_table1.png", full_page=True)


def test_bad_uploads_get_clear_errors_in_the_browser(server, page, tmp_path):
    """A text file and a truncated DICOM: one clear message each, no traceback, a good file still taken."""
    sample = Path(builtin_samples()[0].path).read_bytes()
    (tmp_path / "notes.txt").write_text("not a mammogram")
    (tmp_path / "truncated.dcm").write_bytes(sample[:4096])
    (tmp_path / "good.dcm").write_bytes(sample)
    page.goto(f"{server}/images")
    expect(page.get_by_role("heading", name="Images", exact=True)).to_be_visible(timeout=60_000)
    page.get_by_text("Upload", exact=True).click()
    page.locator("input[type=file]").set_input_files([tmp_path / n for n in ("notes.txt", "truncated.dcm", "good.dcm")])
    page.get_by_role("button", name="Use these images").click()
    errors = page.locator("[data-testid='stAlertContentError']")
    expect(errors).to_have_count(2, timeout=120_000)
    texts = " ".join(errors.all_inner_texts())
    assert "notes.txt" in texts and "truncated.dcm" in texts
    expect(page.get_by_text("1 of 3 files selected.")).to_be_visible(timeout=60_000)
    assert page.locator("[data-testid='stException']").count() == 0
    page.screenshot(path=SHOTS / "images_bad_uploads.png", full_page=True)


def test_clicking_the_image_moves_the_attention_query(server, page):
    """On the Attention page, a click on the HCT attention map sets the query position to that point."""
    page.goto(f"{server}/attention")
    expect(page.get_by_role("heading", name="Attention", exact=True)).to_be_visible(timeout=60_000)
    page.get_by_role("tab", name="Attention of a position").click()
    row_input = page.get_by_label("Query row")
    expect(row_input).to_be_visible(timeout=120_000)
    before = (row_input.input_value(), page.get_by_label("Query column").input_value())
    plot = page.locator(".js-plotly-plot").filter(has=page.locator(".scatterlayer")).last
    expect(plot).to_be_visible(timeout=60_000)
    box = plot.locator(".nsewdrag").first.bounding_box()
    # the image is centred in the plot area (equal axis scales): upper part, a little left of centre
    page.mouse.click(box["x"] + box["width"] * 0.45, box["y"] + box["height"] * 0.2)
    expect(row_input).not_to_have_value(before[0], timeout=60_000)
    after = (int(row_input.input_value()), int(page.get_by_label("Query column").input_value()))
    assert after != tuple(map(int, before)) and after[0] < int(before[0])
    caption = page.get_by_text(f"from model-input position ({after[0]}, {after[1]})")
    expect(caption).to_be_visible(timeout=60_000)  # the map redrawn for the clicked position
    page.screenshot(path=SHOTS / "attention_click.png", full_page=True)


def test_exam_mode_hangs_the_four_views_in_the_browser(server, page):
    """The built-in samples hold two exams: four views hung R-CC, L-CC / R-MLO, L-MLO with their
    probabilities and both breasts' scores."""
    page.goto(f"{server}/attention")
    expect(page.get_by_role("heading", name="Attention", exact=True)).to_be_visible(timeout=60_000)
    page.get_by_role("radio", name="Four-view exam").click()
    captions = page.get_by_text("P(malignant)")
    expect(captions).to_have_count(4, timeout=300_000)
    assert [text.split(" · ")[0] for text in captions.all_inner_texts()] == ["R-CC", "L-CC", "R-MLO", "L-MLO"]
    expect(page.get_by_text("Right breast: mean over its views")).to_be_visible()
    expect(page.get_by_text("Left breast: mean over its views")).to_be_visible()
    expect(page.locator(".js-plotly-plot")).to_have_count(4)
    assert page.locator("[data-testid='stException']").count() == 0
    page.wait_for_timeout(1500)
    page.screenshot(path=SHOTS / "attention_exam.png", full_page=True)
