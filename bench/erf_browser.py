"""The ERF explorer in a real browser: compute at the defaults (the built-in samples, the shipped
checkpoints, the checkpoints' resolution), then time how long a display toggle (the map scale) takes to
redraw, from the click to the page settled. Debian chromium driven by Playwright; saves a screenshot.

Besides the wall time, it reports the CPU time the app server and the browser (this process's whole
process tree) spent on each redraw: on a machine shared with other work the wall time stretches, the
CPU time much less so.

    python bench/erf_browser.py --shot /tmp/erf_default.png
"""

from __future__ import annotations

import argparse
import os
import statistics
import time
from pathlib import Path

from app_server import CHROMIUM, serve
from playwright.sync_api import expect, sync_playwright


def tree_cpu_seconds(roots: list[int]) -> float:
    """User + system CPU seconds of the processes ``roots`` and all their descendants (from /proc)."""
    parents, times = {}, {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        pid = int(stat.parent.name)
        parents[pid], times[pid] = int(fields[1]), (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    chosen, frontier = set(roots), list(roots)
    while frontier:
        pid = frontier.pop()
        children = [child for child, parent in parents.items() if parent == pid and child not in chosen]
        chosen.update(children)
        frontier.extend(children)
    return sum(times.get(pid, 0.0) for pid in chosen)


def settled(page) -> None:
    page.wait_for_selector("[data-testid='stStatusWidget']", state="detached", timeout=600_000)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--shot", default=None, help="save a full-page screenshot after the first draw here")
    args = parser.parse_args()
    process, url = serve()
    try:
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path=CHROMIUM, args=["--headless", "--no-sandbox"])
            page = browser.new_page(viewport={"width": 1500, "height": 2400})
            page.goto(f"{url}/erf_explorer")
            expect(page.get_by_role("heading", name="ERF explorer")).to_be_visible(timeout=120_000)
            settled(page)
            start = time.perf_counter()
            page.get_by_role("button", name="Compute ERF").click()
            page.get_by_text("ERF metrics").wait_for(timeout=1_800_000)
            settled(page)
            compute_s = time.perf_counter() - start
            if args.shot:
                page.screenshot(path=args.shot, full_page=True)
            redraws, cpu = [], []
            for option in ("log10", "linear", "power_0.25", "sqrt"):
                page.get_by_label("Map scale").first.click()
                page.get_by_role("option", name=option, exact=True).wait_for()
                page.wait_for_timeout(500)
                start, used = time.perf_counter(), tree_cpu_seconds([os.getpid(), process.pid])
                page.get_by_role("option", name=option, exact=True).click()
                page.get_by_text(f"ERF maps ({option} scale").wait_for(timeout=60_000)
                settled(page)
                page.wait_for_function("() => new Promise(done => requestAnimationFrame(() => done(true)))")
                redraws.append(time.perf_counter() - start)
                cpu.append(tree_cpu_seconds([os.getpid(), process.pid]) - used)
            browser.close()
    finally:
        process.terminate()
        process.wait(timeout=30)
    print(
        f"compute and first draw {compute_s:.1f} s; map-scale redraws {', '.join(f'{r:.2f}' for r in redraws)} s "
        f"(median {statistics.median(redraws):.2f} s), CPU time of server and browser "
        f"{', '.join(f'{c:.2f}' for c in cpu)} s (median {statistics.median(cpu):.2f} s); "
        f"load average {os.getloadavg()[0]:.1f}; nproc {os.cpu_count()}"
    )


if __name__ == "__main__":
    main()
