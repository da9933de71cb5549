"""App timings on this machine: first render of Home and one ERF (two models, default size and N) under AppTest.

Run from the repository root: ``python bench/app.py``. Prints one line of JSON.
"""

import json
import os
import platform
import time
from pathlib import Path

from streamlit.testing.v1 import AppTest

from app.compute import TASKS

HOME = str(Path(__file__).resolve().parent.parent / "app" / "Home.py")


def main() -> None:
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
    cpu = next((line.split(":", 1)[1].strip() for line in open("/proc/cpuinfo") if line.startswith("model name")), platform.processor())
    print(json.dumps({"home_first_render_s": round(home_s, 2), "erf_s": round(erf_s, 2), "erf_size": size, "erf_n": n,
                      "erf_models": at.multiselect[0].value, "nproc": os.cpu_count(), "cpu": cpu,
                      "date": time.strftime("%Y-%m-%d")}))


if __name__ == "__main__":
    main()
