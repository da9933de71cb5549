"""The app as the README starts it (``streamlit run app/Home.py``), on a free port, for the benchmarks
that drive it in a browser (``bench/erf_browser.py``, ``bench/reading_view.py``, ``bench/load.py``)."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
CHROMIUM = "/usr/bin/chromium"  # Debian's chromium, driven by Playwright


def serve(**env: str) -> tuple[subprocess.Popen, str]:
    """Start the app with ``env`` added to the environment (an empty gradient cache unless
    ``HCT_CACHE_DIR`` is given); return the process and its URL once it answers."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    env = {"HCT_CACHE_DIR": tempfile.mkdtemp(prefix="hct-bench-cache-"), **env}
    process = subprocess.Popen(
        [
            str(Path(sys.executable).parent / "streamlit"),
            "run",
            "app/Home.py",
            "--server.port",
            str(port),
            "--server.headless",
            "true",
        ],
        cwd=ROOT,
        env={**os.environ, **env},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    url = f"http://127.0.0.1:{port}"
    for _ in range(240):
        try:
            urllib.request.urlopen(f"{url}/_stcore/health", timeout=1)
            return process, url
        except OSError:
            time.sleep(0.5)
    process.kill()
    raise SystemExit("streamlit did not start")
