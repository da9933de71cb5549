"""Load test: concurrent browser sessions against one app server, as a department's users would open it.

Starts the app with the README command (``streamlit run app/Home.py``), then drives ``--sessions``
browser sessions at once (Playwright, headless Debian chromium, one browser context each, so one
Streamlit session each) through Images -> ERF explorer (Compute ERF at the page's defaults: the 8
built-in samples, GMIC and HCT-RELU at their cards' 1664x1280) -> Attention (Grad-CAM and saliency
overlays). Session k asks for N = 8 - (k mod 4) images, so the sessions' ERF requests differ and
queue for the device. Reports each session's completion time, the errors seen (exceptions and error
boxes on a page), the server's peak resident memory and the queue positions the pages showed.

    python bench/load.py --sessions 10
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import re
import statistics
import time

from app_server import CHROMIUM, serve
from playwright.async_api import async_playwright

QUEUED = re.compile(r"queued, position (\d+)")


def rss_mb(pid: int) -> float:
    """Resident memory of ``pid`` in MB (from /proc)."""
    with open(f"/proc/{pid}/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return 0.0


async def settled(page) -> None:
    await page.wait_for_selector("[data-testid='stStatusWidget']", state="detached", timeout=900_000)


async def errors_on(page) -> list[str]:
    boxes = page.locator("[data-testid='stException'], [data-testid='stAlertContentError']")
    return [text[:200] for text in await boxes.all_inner_texts()]


async def watch_queue(page, seen: list[int], stop: asyncio.Event) -> None:
    """Record every "queued, position k" the page shows until ``stop``."""
    while not stop.is_set():
        try:
            for text in await page.get_by_text(QUEUED).all_inner_texts():
                seen += [int(k) for k in QUEUED.findall(text)]
        except Exception:  # the page is between reruns
            pass
        await asyncio.sleep(0.5)


async def session(browser, url: str, index: int, start: asyncio.Event) -> dict:
    context = await browser.new_context(viewport={"width": 1664, "height": 1280})
    page = await context.new_page()
    seen: list[int] = []
    stop = asyncio.Event()
    errors: list[str] = []
    await page.goto(f"{url}/images")
    await page.get_by_role("heading", name="Images", exact=True).wait_for(timeout=600_000)
    await start.wait()
    begin = time.perf_counter()
    watcher = asyncio.create_task(watch_queue(page, seen, stop))
    try:
        await settled(page)
        errors += await errors_on(page)
        await page.get_by_role("link", name="ERF explorer").click()
        await page.get_by_role("heading", name="ERF explorer").wait_for(timeout=600_000)
        await settled(page)
        await page.get_by_label("N images").fill(str(8 - index % 4))
        await page.get_by_role("button", name="Compute ERF").click()
        await page.get_by_text("ERF metrics").wait_for(timeout=900_000)
        await settled(page)
        errors += await errors_on(page)
        await page.get_by_role("link", name="Attention").click()
        await page.get_by_text("Malignancy probability").wait_for(timeout=900_000)
        await settled(page)
        errors += await errors_on(page)
    except Exception as err:  # a step that never came: an error of this session
        errors.append(f"{type(err).__name__}: {str(err)[:200]}")
    finally:
        stop.set()
        await watcher
        await context.close()
    return {
        "session": index,
        "n_images": 8 - index % 4,
        "seconds": round(time.perf_counter() - begin, 1),
        "errors": errors,
        "queue_positions": sorted(set(seen)),
    }


async def drive(url: str, sessions: int, pid: int) -> tuple[list[dict], float]:
    peak = rss_mb(pid)
    async with async_playwright() as p:
        browser = await p.chromium.launch(
            executable_path=CHROMIUM,
            args=["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking"],
        )
        start = asyncio.Event()
        tasks = [asyncio.create_task(session(browser, url, k, start)) for k in range(sessions)]
        await asyncio.sleep(5)
        start.set()
        while not all(t.done() for t in tasks):
            peak = max(peak, rss_mb(pid))
            await asyncio.sleep(0.5)
        await browser.close()
    return [t.result() for t in tasks], peak


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sessions", type=int, default=10)
    args = parser.parse_args()
    process, url = serve()
    began = time.perf_counter()
    try:
        idle = rss_mb(process.pid)
        results, peak = asyncio.run(drive(url, args.sessions, process.pid))
    finally:
        process.terminate()
        process.wait(timeout=30)
    times = [r["seconds"] for r in results]
    print(
        json.dumps(
            {
                "sessions": results,
                "completion_s_median": statistics.median(times),
                "completion_s_max": max(times),
                "errors": sum(len(r["errors"]) for r in results),
                "server_rss_mb_idle": round(idle),
                "server_rss_mb_peak": round(peak),
                "queue_positions_seen": sorted({k for r in results for k in r["queue_positions"]}),
                "wall_s": round(time.perf_counter() - began, 1),
                "nproc": os.cpu_count(),
                "load_average": os.getloadavg()[0],
                "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
            },
            indent=1,
        )
    )


if __name__ == "__main__":
    main()
