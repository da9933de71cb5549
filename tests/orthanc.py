"""A real Orthanc PACS (Debian's ``orthanc`` and ``orthanc-dicomweb``; ``.ci/run`` installs them) for the
tests: loopback only, a free port, basic auth on, storage in a temporary folder, stopped at the end."""

from __future__ import annotations

import json
import shutil
import socket
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import pytest
import requests

DICOMWEB_PLUGIN = Path("/usr/share/orthanc/plugins/libOrthancDicomWeb.so")
USER, PASSWORD = "hct", "orthanc-test-password"


@dataclass(frozen=True)
class Orthanc:
    """A running server: its base URL (DICOMweb under ``/dicom-web``) and the one registered user."""

    url: str
    user: str = USER
    password: str = PASSWORD

    @property
    def dicomweb(self) -> str:
        return f"{self.url}/dicom-web"

    def upload(self, data: bytes) -> dict:
        """Store one DICOM file through Orthanc's own REST API (``POST /instances``)."""
        response = requests.post(f"{self.url}/instances", data=data, auth=(self.user, self.password), timeout=30)
        response.raise_for_status()
        return response.json()


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def config(storage: Path, http_port: int) -> dict:
    """The configuration the tests run Orthanc with (the README's example is this one)."""
    return {
        "Name": "HCT test PACS",
        "StorageDirectory": str(storage / "db"),
        "IndexDirectory": str(storage / "db"),
        "HttpPort": http_port,
        "RemoteAccessAllowed": False,
        "AuthenticationEnabled": True,
        "RegisteredUsers": {USER: PASSWORD},
        "DicomServerEnabled": False,
        "DicomPort": free_port(),
        "Plugins": [str(DICOMWEB_PLUGIN)],
        "DicomWeb": {"Enable": True, "Root": "/dicom-web/"},
        "HttpTimeout": 30,
    }


@contextmanager
def running_orthanc(folder: Path) -> Iterator[Orthanc]:
    """Start Orthanc with :func:`config` in ``folder``, wait until it answers, stop it at the end."""
    binary = shutil.which("Orthanc") or "/usr/sbin/Orthanc"
    if not Path(binary).is_file() or not DICOMWEB_PLUGIN.is_file():
        raise RuntimeError(
            "Orthanc and its DICOMweb plugin are not installed: "
            "apt-get install -y orthanc orthanc-dicomweb (as .ci/run does)"
        )
    port = free_port()
    path = folder / "orthanc.json"
    path.write_text(json.dumps(config(folder, port), indent=2))
    log = open(folder / "orthanc.log", "wb")
    process = subprocess.Popen([binary, str(path)], stdout=log, stderr=subprocess.STDOUT, cwd=folder)
    server = Orthanc(f"http://127.0.0.1:{port}")
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                if requests.get(f"{server.url}/system", auth=(USER, PASSWORD), timeout=1).ok:
                    break
            except requests.ConnectionError:
                pass
            if process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"Orthanc did not start: {(folder / 'orthanc.log').read_text()[-2000:]}")
            time.sleep(0.1)
        yield server
    finally:
        process.terminate()
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        log.close()


def exam_files(study_dates: dict[str, str] | None = None) -> dict[str, list[tuple[object, bytes]]]:
    """The eight built-in CBIS-DDSM samples filed as a PACS holds a screening exam: each sample exam's
    four images in one study (patient ID, accession and date of their own), with their laterality and
    view in ImageLaterality and ViewPosition; pixels untouched. ``{exam: [(record, file bytes)]}``."""
    import io

    import pydicom
    from pydicom.uid import generate_uid

    from hct.data import builtin_samples

    dates = study_dates or {"sfm-benign-0": "20161004", "sfm-malign-0": "20170312"}
    exams: dict[str, list] = {}
    for record in builtin_samples():
        exam = record.exam_id
        ds = pydicom.dcmread(record.path)
        ds.PatientID, ds.PatientName = f"HCT-{exam}", f"Test^{exam}"
        ds.StudyInstanceUID = generate_uid(entropy_srcs=["hct-test-study", exam])
        ds.AccessionNumber, ds.StudyDate, ds.StudyDescription = f"ACC-{exam}"[:16], dates[exam], "MAMMO SCREENING"
        ds.ImageLaterality, ds.ViewPosition = record.laterality, record.view
        out = io.BytesIO()
        ds.save_as(out, enforce_file_format=True)
        exams.setdefault(exam, []).append((record, out.getvalue()))
    return exams


@pytest.fixture(scope="module")
def exams():
    """:func:`exam_files`, once per test module."""
    return exam_files()


@pytest.fixture(scope="module")
def orthanc(tmp_path_factory, exams):
    """A running Orthanc holding the two sample exams."""
    with running_orthanc(tmp_path_factory.mktemp("orthanc")) as server:
        for files in exams.values():
            for _, data in files:
                server.upload(data)
        yield server


def study_uid(exams, exam: str) -> str:
    """The Study Instance UID ``exam`` is filed under."""
    import io

    import pydicom

    return pydicom.dcmread(io.BytesIO(exams[exam][0][1]), stop_before_pixels=True).StudyInstanceUID
