"""The reading view's speed, measured in the browser (headless Debian chromium driven by Playwright)
against the app started as the README says, with its defaults (the shipped HCT Performer-RELU at its
card's 1664x1280, Grad-CAM and saliency):

- from choosing an image not seen before to its Grad-CAM and saliency overlays drawn;
- from a click on the attention map to the map redrawn for the clicked position.

Run from the repository root: ``python bench/reading_view.py``. Prints one line of JSON.
"""

from __future__ import annotations

import json
import os
import re
import statistics
import time

import torch
from app_server import CHROMIUM, ROOT, serve
from playwright.sync_api import Page, expect, sync_playwright

from hct.data import builtin_samples
from hct.runtime.devices import describe_device, resolve_device

TIMEOUT_MS = 600_000


def overlays_drawn(page: Page, image: str) -> None:
    """Wait until the Grad-CAM and saliency pictures of ``image`` are drawn (their captions name it)."""
    for method in ("Grad-CAM at stages.4", "saliency"):
        caption = page.get_by_text(re.compile(rf"^{re.escape(method)} · .* · {re.escape(image)} · 1664x1280$"))
        expect(caption).to_be_visible(timeout=TIMEOUT_MS)
    page.wait_for_function(
        "document.querySelectorAll('.js-plotly-plot .layer-below image, .js-plotly-plot image').length >= 2",
        timeout=TIMEOUT_MS,
    )


def choose_image(page: Page, name: str) -> float:
    """Seconds from choosing ``name`` in the Image box to its two overlays drawn."""
    page.get_by_label("Image", exact=True).click()
    option = page.get_by_role("option", name=f"{name} (")  # "sfm-benign-0/1-131 (L-MLO)"
    start = time.perf_counter()
    option.click()
    overlays_drawn(page, name)
    return time.perf_counter() - start


def click_attention(page: Page, fraction: tuple[float, float]) -> float:
    """Seconds from a click at ``fraction`` of the attention map's plot area to the map redrawn there."""
    caption = page.get_by_text("from model-input position")
    before = caption.inner_text()
    box = page.locator(".js-plotly-plot").last.locator(".nsewdrag").first.bounding_box()
    start = time.perf_counter()
    page.mouse.click(box["x"] + box["width"] * fraction[1], box["y"] + box["height"] * fraction[0])
    expect(caption).not_to_have_text(before, timeout=TIMEOUT_MS)
    return time.perf_counter() - start


def main() -> None:
    names = [r.image_id for r in builtin_samples()]
    process, url = serve(HCT_APP_JOB_STORE=str(ROOT / "out" / "bench_jobs.sqlite"))
    try:
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path=CHROMIUM, args=["--headless", "--no-sandbox", "--disable-gpu"])
            page = browser.new_page(viewport={"width": 1664, "height": 1280})
            start = time.perf_counter()
            page.goto(f"{url}/attention")
            overlays_drawn(page, names[0])
            first = time.perf_counter() - start
            choose = [choose_image(page, name) for name in names[1:5]]
            page.get_by_role("tab", name="Attention of a position").click()
            expect(page.get_by_text("from model-input position")).to_be_visible(timeout=TIMEOUT_MS)
            clicks = [click_attention(page, f) for f in ((0.3, 0.4), (0.6, 0.45), (0.45, 0.3), (0.7, 0.4))]
            browser.close()
    finally:
        process.terminate()
        process.wait(timeout=30)
    print(
        json.dumps(
            {
                "first_open_s": round(first, 2),
                "choose_image_s": [round(s, 2) for s in choose],
                "choose_image_median_s": round(statistics.median(choose), 2),
                "click_s": [round(s, 2) for s in clicks],
                "click_median_s": round(statistics.median(clicks), 2),
                "machine": describe_device(resolve_device("cpu")),
                "nproc": os.cpu_count(),
                "load_average": os.getloadavg(),
                "torch": torch.__version__,
                "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
            }
        )
    )


if __name__ == "__main__":
    main()
