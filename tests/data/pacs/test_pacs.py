"""The PACS over DICOMweb against a real Orthanc (tests/orthanc.py): search, retrieve into memory,
the results written with highdicom stored back and read again, and every fault a named message."""

import datetime as dt
import http.server
import io
import subprocess
import threading
import time

import numpy as np
import pydicom
import pytest

from hct.data import read_mammogram
from hct.data.pacs import Pacs, PacsConfig, PacsError, StudyQuery, pacs_config
from hct.errors import ComputationCancelled
from tests.orthanc import exams, orthanc, study_uid  # noqa: F401 (fixtures)

pytestmark = pytest.mark.slow


def client(server, **overrides) -> Pacs:
    settings = dict(url=server.dicomweb, username=server.user, password=server.password, timeout=20) | overrides
    return Pacs(PacsConfig(**settings))


def test_search_by_patient_id_lists_the_four_views(orthanc, exams):
    rows = client(orthanc).search(StudyQuery(patient_id="HCT-sfm-malign-0"))
    assert [r.study_uid for r in rows] == [study_uid(exams, "sfm-malign-0")]
    row = rows[0]
    assert row.study_date == "20170312" and row.description == "MAMMO SCREENING" and len(row.instances) == 4
    assert row.views == "R-CC, L-CC, R-MLO, L-MLO"


def test_search_by_date_range_and_accession(orthanc, exams):
    pacs = client(orthanc)
    in_2016 = pacs.search(StudyQuery(date_from=dt.date(2016, 1, 1), date_to=dt.date(2016, 12, 31)))
    assert [r.study_uid for r in in_2016] == [study_uid(exams, "sfm-benign-0")]
    both = pacs.search(StudyQuery(date_from=dt.date(2016, 1, 1)))
    assert [r.study_date for r in both] == ["20170312", "20161004"]  # newest first
    assert [r.accession for r in pacs.search(StudyQuery(accession="ACC-sfm-benign-0"))] == ["ACC-sfm-benign-0"]
    assert pacs.search(StudyQuery(patient_id="nobody")) == []


def test_retrieve_holds_the_studys_pixels_in_memory(orthanc, exams, tmp_path, monkeypatch):
    uid = study_uid(exams, "sfm-benign-0")
    seen = []
    monkeypatch.setenv("HCT_PACS_ACCESS_LOG", str(tmp_path / "access.log"))
    pacs = client(orthanc)
    pacs.search(StudyQuery(patient_id="HCT-sfm-benign-0"))
    retrieved = pacs.retrieve(uid, progress=lambda done, total: seen.append((done, total)))
    logged = (tmp_path / "access.log").read_text()
    assert "search: 1 studies found (patient id given" in logged and "retrieved study:" in logged
    assert uid not in logged and "HCT-sfm-benign-0" not in logged
    assert seen == [(1, 4), (2, 4), (3, 4), (4, 4)] and retrieved.skipped == ()
    originals = {
        pydicom.dcmread(io.BytesIO(data), stop_before_pixels=True).SOPInstanceUID: (record, data)
        for record, data in exams["sfm-benign-0"]
    }
    for ref, data in retrieved.instances:
        record, original = originals[ref.sop_uid]
        assert (ref.laterality, ref.view) == (record.laterality, record.view)
        np.testing.assert_array_equal(read_mammogram(data).pixels, read_mammogram(record.path).pixels)
        assert pydicom.dcmread(io.BytesIO(data)).PixelData == pydicom.dcmread(io.BytesIO(original)).PixelData


def test_a_study_over_the_bound_says_what_was_skipped(orthanc, exams):
    retrieved = client(orthanc, max_instances=3).retrieve(study_uid(exams, "sfm-malign-0"))
    assert len(retrieved.instances) == 3 and retrieved.skipped == ("1 instances over the bound of 3 per study",)
    retrieved = client(orthanc, max_instance_mb=20).retrieve(study_uid(exams, "sfm-malign-0"))
    assert retrieved.instances == () and len(retrieved.skipped) == 4 and "over the 20 MB bound" in retrieved.skipped[0]


def test_cancel_stops_between_instances(orthanc, exams):
    calls = []
    with pytest.raises(ComputationCancelled, match="after 1 of 4"):
        client(orthanc).retrieve(study_uid(exams, "sfm-benign-0"), cancel=lambda: calls.append(1) or len(calls) > 1)


def test_wrong_credentials_are_named(orthanc):
    with pytest.raises(PacsError, match="refused the credentials \\(HTTP 401\\)"):
        client(orthanc, password="wrong").search(StudyQuery(patient_id="HCT-sfm-benign-0"))


def test_a_server_that_is_down_is_named(tmp_path):
    from tests.orthanc import free_port

    with pytest.raises(PacsError, match="cannot be reached"):
        Pacs(PacsConfig(url=f"http://127.0.0.1:{free_port()}/dicom-web")).search(StudyQuery(patient_id="x"))


def test_a_study_without_mammograms_is_named(orthanc):
    from hct.data.image.dicom_write import new_dataset, write_dataset

    ds = new_dataset("1.2.840.10008.5.1.4.1.1.7")  # a Secondary Capture of modality OT: no MG
    ds.StudyInstanceUID, ds.SeriesInstanceUID = pydicom.uid.generate_uid(), pydicom.uid.generate_uid()
    ds.Modality, ds.PatientID, ds.Rows, ds.Columns = "OT", "HCT-no-mg", 16, 16
    ds.SamplesPerPixel, ds.PhotometricInterpretation, ds.BitsAllocated, ds.BitsStored = 1, "MONOCHROME2", 8, 8
    ds.HighBit, ds.PixelRepresentation, ds.PixelData = 7, 0, bytes(256)
    orthanc.upload(write_dataset(ds))
    with pytest.raises(PacsError, match="has no MG \\(mammography\\) instance"):
        client(orthanc).retrieve(ds.StudyInstanceUID)


def test_an_empty_search_is_refused_before_asking():
    with pytest.raises(PacsError, match="give a patient ID"):
        StudyQuery().filters()
    with pytest.raises(PacsError, match="ends .* before it starts"):
        StudyQuery(date_from=dt.date(2020, 2, 1), date_to=dt.date(2020, 1, 1)).filters()


class _Fake(http.server.BaseHTTPRequestHandler):
    """A server that is no PACS: it answers HTML, or lists one MG instance and then hangs on retrieval."""

    def do_GET(self):  # noqa: N802
        if self.server.mode == "html" or "instances" not in self.path.split("?")[0]:
            body = b"<html><body>Welcome to the intranet</body></html>"
            kind = "text/html"
        elif "/instances/" in self.path:
            time.sleep(3)
            return
        else:
            body = (
                b'[{"0020000D": {"vr": "UI", "Value": ["1.2.3"]}, "0020000E": {"vr": "UI", "Value": ["1.2.3.4"]},'
                b' "00080018": {"vr": "UI", "Value": ["1.2.3.4.5"]}, "00080060": {"vr": "CS", "Value": ["MG"]}}]'
            )
            kind = "application/dicom+json"
        self.send_response(200)
        self.send_header("Content-Type", kind)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


@pytest.fixture(params=["html", "slow"])
def fake(request):
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Fake)
    server.mode = request.param
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server
    server.shutdown()
    server.server_close()


def test_a_non_dicom_answer_and_a_timeout_are_named(fake):
    pacs = Pacs(PacsConfig(url=f"http://127.0.0.1:{fake.server_address[1]}/dicom-web", timeout=0.5))
    if fake.mode == "html":
        with pytest.raises(PacsError, match="not DICOMweb"):
            pacs.search(StudyQuery(patient_id="x"))
    else:
        with pytest.raises(
            PacsError, match="retrieving instance 1 of 1 \\(nothing was kept\\).*did not answer within 0.5 s"
        ):
            pacs.retrieve("1.2.3")


def test_configuration_from_a_section_and_the_environment(tmp_path):
    assert pacs_config({}, env={}) is None
    config = pacs_config(
        {"url": "https://pacs.example.org/dicom-web", "username": "u", "password": "secret"},
        env={"HCT_PACS_TIMEOUT": "5"},
    )
    assert config.timeout == 5 and config.username == "u" and "secret" not in repr(config)
    file = tmp_path / "pacs.toml"
    file.write_text('[pacs]\nurl = "https://pacs.example.org/dicom-web"\ntoken = "t"\n')
    assert pacs_config(env={"HCT_PACS_CONFIG": str(file)}).token == "t"
    with pytest.raises(Exception, match="must start with https://"):
        pacs_config({"url": "pacs.example.org"}, env={})
    with pytest.raises(Exception, match="unknown \\[pacs\\] settings \\['host'\\]"):
        pacs_config({"url": "https://x", "host": "y"}, env={})


def dciodvfy_errors(ds) -> list[str]:
    """The errors Debian's dicom3tools validator finds in ``ds`` (it reads a file)."""
    import tempfile

    from hct.data.image.dicom_write import write_dataset

    with tempfile.NamedTemporaryFile(suffix=".dcm") as handle:
        write_dataset(ds, handle.name)
        done = subprocess.run(["dciodvfy", handle.name], capture_output=True, text=True, timeout=120)
    return [line for line in (done.stdout + done.stderr).splitlines() if line.startswith("Error")]


def texts(ds, code: str) -> set[str]:
    """The text values of every content item of the SR named by DCM ``code`` (111001: algorithm name,
    111003: algorithm version)."""
    found = set()
    for item in ds.get("ContentSequence", []):
        if item.get("ValueType") == "TEXT" and item.ConceptNameCodeSequence[0].CodeValue == code:
            found.add(item.TextValue)
        found |= texts(item, code)
    return found


@pytest.fixture(scope="module")
def exam_read(orthanc, exams):
    """The malignant exam retrieved from the PACS and read as the reading view does (saliency of the shipped
    HCT checkpoint at a tiny size: its top-mass outline is never empty), its results as DICOM objects."""
    from hct.data import preprocess
    from hct.explain import attribute
    from hct.explain.display.dicom_results import Producer, result_objects, view_result
    from hct.explain.display.overlays import overlay_picture
    from hct.explain.display.readable import readable
    from hct.models.checkpoints import load_model

    spec = "checkpoints/hct_performer_relu.safetensors"
    model, card = load_model(spec)
    retrieved = client(orthanc).retrieve(study_uid(exams, "sfm-malign-0"))
    views, shown = [], {}
    for ref, data in retrieved.instances:
        image = read_mammogram(data)
        pre = preprocess(image, (64, 48))
        attribution = attribute(model, pre.tensor, "saliency")
        readable_map = readable(attribution.heatmap)
        overlay = overlay_picture(image.pixels, pre, readable_map, long_side=None)
        views.append(
            view_result(
                data,
                ref.laterality,
                ref.view,
                pre,
                attribution.heatmap,
                attribution.probability,
                readable_map.region,
                overlay,
            )
        )
        shown[ref.sop_uid] = attribution.probability
    producer = Producer(model.ref, "saliency")
    return retrieved, views, shown, producer, result_objects(views, producer)


def test_written_objects_pass_dciodvfy(exam_read):
    *_, objects = exam_read
    kinds = {}
    for ds in objects:
        kinds.setdefault(ds.SOPClassUID.name, ds)
    assert sorted(kinds) == ["Comprehensive 3D SR Storage", "Parametric Map Storage", "Secondary Capture Image Storage"]
    for name, ds in kinds.items():
        assert dciodvfy_errors(ds) == [], name


def test_results_stored_into_the_study_and_read_back(orthanc, exam_read):
    from pydicom.sr.codedict import codes

    retrieved, views, shown, producer, objects = exam_read
    pacs = client(orthanc)
    captures = [ds for ds in objects if ds.SOPClassUID.name == "Secondary Capture Image Storage"]
    assert {ds.file_meta.TransferSyntaxUID.name for ds in captures} == {"JPEG-LS Lossless Image Compression"}
    assert sorted(pacs.store(objects)) == sorted(ds.SOPInstanceUID for ds in objects)
    study = retrieved.study_uid
    series = pacs.client.search_for_series(study, fields=["SeriesDescription", "Modality", "SeriesNumber"])
    new = {s["0020000E"]["Value"][0]: s["00080060"]["Value"][0] for s in series if s["00200011"]["Value"][0] >= 9700}
    assert sorted(new.values()) == ["OT", "OT", "SR"]  # capture, map (highdicom: OT for a mammogram), report
    assert len(new) == 3  # each kind in a new series of the source study
    back = {}
    for ds in objects:
        back[ds.SOPInstanceUID] = pacs.client.retrieve_instance(study, ds.SeriesInstanceUID, ds.SOPInstanceUID)
    sources = {ref.sop_uid for ref, _ in retrieved.instances}
    for ds in back.values():
        assert ds.StudyInstanceUID == study and ds.Manufacturer == "HCT Explorer"
        if ds.SOPClassUID.name == "Secondary Capture Image Storage":
            source = ds.SourceImageSequence[0].ReferencedSOPInstanceUID
            assert source in sources
            view = next(v for v in views if v.source.SOPInstanceUID == source)
            np.testing.assert_array_equal(ds.pixel_array, view.overlay)  # lossless
        elif ds.SOPClassUID.name == "Parametric Map Storage":
            frame = ds.PerFrameFunctionalGroupsSequence[0]
            source = frame.DerivationImageSequence[0].SourceImageSequence[0].ReferencedSOPInstanceUID
            view = next(v for v in views if v.source.SOPInstanceUID == source)
            values = np.frombuffer(ds.FloatPixelData, np.float32).reshape(ds.Rows, ds.Columns)
            np.testing.assert_array_equal(values, view.heatmap)
    kinds = sorted(ds.SOPClassUID.name for ds in back.values())
    assert (
        kinds
        == ["Comprehensive 3D SR Storage"] + ["Parametric Map Storage"] * 4 + ["Secondary Capture Image Storage"] * 4
    )
    report = next(ds for ds in back.values() if ds.Modality == "SR")
    import highdicom as hd

    sr = hd.sr.Comprehensive3DSR.from_dataset(report)
    per_view, per_breast = {}, {}
    for group in [*sr.content.get_planar_roi_measurement_groups(), *sr.content.get_image_measurement_groups()]:
        (measurement,) = group.get_measurements(name=codes.DCM.ProbabilityOfCancer)
        roi = getattr(group, "roi", None)
        images = [] if roi is not None else group.source_images
        if roi is not None or images:
            reference = (roi.ContentSequence if roi is not None else images)[0].ReferencedSOPSequence[0]
            per_view[reference.ReferencedSOPInstanceUID] = measurement.value
        else:
            side = group.finding_sites[0].laterality
            per_breast["R" if side == codes.SCT.Right else "L"] = measurement.value
    assert texts(report, "111001") == {producer.model} and texts(report, "111003") == {producer.version}
    assert per_view == pytest.approx(shown, abs=1e-6)  # every view, its probability as shown
    assert any(v.outline is not None for v in views)
    assert sum(1 for v in views if v.outline is not None) == len(sr.content.get_planar_roi_measurement_groups())
    expected = {side: np.mean([v.probability for v in views if v.laterality == side]) for side in "RL"}
    assert per_breast == pytest.approx(expected, abs=1e-6)


def test_a_refused_store_names_what_was_stored_and_what_was_not(orthanc):
    from hct.data.image.dicom_write import mammogram_dataset

    uid = pydicom.uid.generate_uid()  # a study of its own: the sample exams stay as they are
    kept = mammogram_dataset(
        np.zeros((32, 32), np.uint16),
        StudyInstanceUID=uid,
        PatientID="HCT-refused",
        SeriesInstanceUID=pydicom.uid.generate_uid(),
        SeriesDescription="kept",
        Laterality="L",
    )
    other = mammogram_dataset(
        np.zeros((32, 32), np.uint16),
        StudyInstanceUID=pydicom.uid.generate_uid(),
        SeriesInstanceUID=pydicom.uid.generate_uid(),
        SeriesDescription="astray",
        Laterality="R",
    )
    with pytest.raises(PacsError, match=r"refused 1 of 2 objects: astray R.*; stored: kept L$"):
        client(orthanc).store([kept, other])


@pytest.fixture()
def pacs_env(orthanc, monkeypatch):
    monkeypatch.setenv("HCT_PACS_URL", orthanc.dicomweb)
    monkeypatch.setenv("HCT_PACS_USERNAME", orthanc.user)
    monkeypatch.setenv("HCT_PACS_PASSWORD", orthanc.password)
    monkeypatch.delenv("HCT_PACS_CONFIG", raising=False)


def test_cli_search_and_get(pacs_env, exams, tmp_path, capsys):
    from hct.__main__ import main

    assert main(["pacs", "search", "--date-from", "2017-01-01"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert (
        lines[1].split("\t")
        == [study_uid(exams, "sfm-malign-0"), "20170312", "4", "R-CC, L-CC, R-MLO, L-MLO", "MAMMO SCREENING"]
        and len(lines) == 2
    )
    assert main(["pacs", "get", study_uid(exams, "sfm-benign-0"), "--out", str(tmp_path / "exam")]) == 0
    written = sorted(p.name for p in (tmp_path / "exam").iterdir())
    assert written == ["1-R-CC.dcm", "2-L-CC.dcm", "3-R-MLO.dcm", "4-L-MLO.dcm"]
    assert main(["pacs", "search", "--date-from", "2017-01-01", "--date-to", "2016-01-01"]) == 2
    assert "ends (2016-01-01) before it starts" in capsys.readouterr().err


def test_cli_reads_a_pacs_study_as_images_without_writing_it(pacs_env, exams, tmp_path, capsys):
    from hct.__main__ import main

    uid = study_uid(exams, "sfm-benign-0")
    out = tmp_path / "predictions.csv"
    assert (
        main(
            [
                "predict",
                "--checkpoint",
                "hct_performer_relu",
                "--data",
                f"pacs:{uid}",
                "--size",
                "64x48",
                "--out",
                str(out),
            ]
        )
        == 0
    )
    table = out.read_text().splitlines()
    # four views, by study hash
    assert len(table) == 5 and all(
        line.split(",")[0].endswith(("R-CC", "L-CC", "R-MLO", "L-MLO")) for line in table[1:]
    )
    assert (
        main(
            [
                "explain",
                "--model",
                "hct_performer_relu",
                "--image",
                f"pacs:{uid}/L-MLO",
                "--size",
                "64x48",
                "--method",
                "saliency",
                "--secondary-capture",
                "--reference-study",
                "--out",
                str(tmp_path / "x"),
            ]
        )
        == 0
    )
    capture = pydicom.dcmread(next((tmp_path / "x").glob("*.dcm")))
    assert capture.StudyInstanceUID == uid and not capture.get("PatientID")
    assert main(["explain", "--model", "hct_performer_relu", "--image", f"pacs:{uid}", "--out", str(tmp_path)]) == 2
    assert "holds 4 images" in capsys.readouterr().err
    assert (
        main(
            [
                "erf",
                "--models",
                "hct_performer_relu",
                "--images",
                f"pacs:{uid}",
                "--n",
                "2",
                "--size",
                "64x48",
                "--cache-dir",
                str(tmp_path / "cache"),
                "--out",
                str(tmp_path / "erf"),
            ]
        )
        == 0
    )
    assert not (tmp_path / "cache").exists()  # no gradient of a PACS image kept on disk
    assert [p.name for p in tmp_path.rglob("*.dcm")] == [capture.filename.rsplit("/", 1)[-1]]
