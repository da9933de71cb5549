"""App timings on this machine under AppTest: first render of Home, one ERF (two models, default size
and N; empty gradient cache), and the page's rerun when a display setting changes (the map scale).

Run from the repository root: ``python bench/app_timings.py``. Prints one line of JSON.
"""

import json
import os
import platform
import statistics
import sys
import tempfile
import time
from pathlib import Path

from streamlit.testing.v1 import AppTest

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))  # the app package (a script's own folder comes first on sys.path)
from app.tasks import TASKS  # noqa: E402

HOME = str(ROOT / "app" / "Home.py")


def main() -> None:
    os.environ["HCT_CACHE_DIR"] = tempfile.mkdtemp(prefix="hct-bench-cache-")  # an empty gradient cache
    start = time.perf_counter()
    at = AppTest.from_file(HOME, default_timeout=600).run()
    home_s = time.perf_counter() - start
    assert not at.exception, at.exception
    at.switch_page("../pages/erf_explorer.py").run()
    size, n = at.selectbox[0].options[0].removesuffix(" (model card)"), at.number_input[0].value
    start = time.perf_counter()
    at.button[0].click().run()
    at.session_state[TASKS]["erf"].wait()
    at.run()
    erf_s = time.perf_counter() - start
    assert not at.exception and not at.error, (at.exception, [e.value for e in at.error])
    toggles = []
    for scale in ("log10", "linear", "power_0.25", "sqrt"):
        start = time.perf_counter()
        at.selectbox(key="erf-scale").set_value(scale).run()
        toggles.append(time.perf_counter() - start)
    cpu = next(
        (line.split(":", 1)[1].strip() for line in open("/proc/cpuinfo") if line.startswith("model name")),
        platform.processor(),
    )
    print(
        json.dumps(
            {
                "home_first_render_s": round(home_s, 2),
                "erf_s": round(erf_s, 2),
                "erf_size": size,
                "erf_n": n,
                "scale_toggle_rerun_s_median": round(statistics.median(toggles), 2),
                "load_average": os.getloadavg()[0],
                "erf_models": at.multiselect[0].value,
                "nproc": os.cpu_count(),
                "cpu": cpu,
                "date": time.strftime("%Y-%m-%d"),
            }
        )
    )


if __name__ == "__main__":
    main()
