"""The app as a shared server: every typed path confined to the data roots, over-budget work as a
queued job, sessions that never see each other's uploads, results or jobs, a fresh checkout that
trains, and sign-on."""

import re
import time
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from hct.data import builtin_samples
from hct.data.sets import roots as data_roots
from hct.data.sets.roots import ROOTS_ENV
from hct.runtime.serving import Task
from tests.paths import HOME, REPO

from app import compute, state, tasks
from app.tasks import TASKS
from app.widgets import PATH_KEY

PAGES = sorted(p.stem for p in (REPO / "pages").glob("*.py"))
# every path input, by key: a walk that misses one fails
PATH_INPUTS = {
    "images-Phantom data set",
    "images-Manifest",
    "images-Public data set",
    "bd-predictions",
    "train-manifest",
}
NOT_PATHS: dict[str, str] = {}  # text inputs that take no path: key -> what they take


@pytest.fixture()
def env(monkeypatch, tmp_path):
    monkeypatch.setenv("HCT_APP_MAX_SIZE", "64x48")
    monkeypatch.setenv("HCT_APP_JOB_STORE", str(tmp_path / "runs" / "jobs.sqlite"))
    monkeypatch.delenv(ROOTS_ENV, raising=False)
    return tmp_path


def session(page: str | None = None) -> AppTest:
    at = AppTest.from_file(HOME, default_timeout=240)
    at.run()
    if page:
        at.switch_page(f"../pages/{page}.py").run()
    assert not at.exception, at.exception
    return at


def shown(at: AppTest) -> str:
    """Everything the session's page shows, as text (pictures' base64 data left out: its letters are no text)."""
    parts = []

    def walk(node) -> None:
        for child in getattr(node, "children", {}).values():
            walk(child)
        if getattr(node, "proto", None) is not None:
            parts.append(str(node.proto))
        if type(node).__name__ == "Dataframe":
            parts.append(node.value.to_csv())

    walk(at._tree)
    return re.sub(r"base64,[A-Za-z0-9+/=\\]+", "base64,", "\n".join(parts))


# ----- data roots


def test_every_text_input_of_the_app_is_a_confined_path_input():
    """No page or helper takes a server path but through widgets.path_input (which confines it); the only
    other text fields are the PACS search's, whose values go to the configured server as query terms."""
    sources = {p: p.read_text() for p in [*(REPO / "pages").glob("*.py"), *(REPO / "app").glob("*.py")]}
    calls = [
        (p.name, line.strip())
        for p, text in sources.items()
        for line in text.splitlines()
        if re.search(r"\b(text_input|text_area|chat_input)\(", line)
    ]
    assert sorted(calls) == sorted(
        [
            (
                "widgets.py",
                "text = st.text_input(label, value=value, placeholder=placeholder, key=PATH_KEY + key).strip()",
            ),
            ("images.py", 'patient = cols[0].text_input("Patient ID", key="pacs-patient")'),
            ("images.py", 'accession = cols[1].text_input("Accession number", key="pacs-accession")'),
        ]
    )


def _states(at: AppTest):
    """The page once, then in each option of each of its radios (where path inputs show)."""
    yield
    for index in range(len(at.radio)):
        for option in at.radio[index].options:
            at.radio[index].set_value(option).run()
            yield


def test_every_path_input_on_every_page_refuses_paths_outside_the_roots_alike(env):
    outside = env / "outside"
    outside.mkdir()
    (outside / "secret.csv").write_text("image_id,path\n")
    (env / "root").mkdir()
    (env / "root" / "link").symlink_to(outside)
    tries = [
        str(outside / "secret.csv"),
        str(outside / "absent.csv"),
        "/etc/passwd",
        "data/../../../../../etc/passwd",
        str(env / "root" / "link" / "secret.csv"),
    ]
    seen = set()
    for page in PAGES:
        at = session(page)
        for _ in _states(at):
            for widget in list(at.text_input):
                key = widget.key.removeprefix(PATH_KEY)
                assert widget.key.startswith(PATH_KEY) or key in NOT_PATHS, (
                    f"{page}: {widget.label!r} is not a path_input"
                )
                if key in NOT_PATHS or key in seen:
                    continue
                seen.add(key)
                messages = []
                for text in tries:
                    at.text_input(key=widget.key).set_value(text).run()
                    assert not at.exception, (page, key, at.exception)
                    refusals = [e.value for e in at.error if ROOTS_ENV in e.value]
                    assert len(refusals) == 1, (page, key, text, [e.value for e in at.error])
                    messages.append(refusals[0].replace(text, "<path>"))
                assert len(set(messages)) == 1, messages  # the same whether the path exists or not
                at.text_input(key=widget.key).set_value("").run()
    assert seen == PATH_INPUTS


# ----- fair compute


def test_a_request_over_the_budget_runs_as_a_queued_job_and_keeps_its_result(env, monkeypatch):
    monkeypatch.setenv("HCT_COMPUTE_BUDGET", "0.01")
    at = session("erf_explorer")
    at.number_input[0].set_value(2)
    at.button[0].click().run()
    assert [e.value for e in at.error if "HCT_COMPUTE_BUDGET" in e.value] and not at.get("plotly_chart")
    at.button(key="erf-as-job").click().run()
    task = at.session_state[TASKS]["erf"]
    assert task.background and task.wait(240) and task.state == "done", task.error
    at.run()
    assert not at.exception and not at.error
    assert len(at.get("plotly_chart")) == 3
    at.switch_page("../pages/images.py").run()
    at.switch_page("../pages/erf_explorer.py").run()
    assert len(at.get("plotly_chart")) == 3  # kept for the session


def test_a_queued_job_is_not_dropped_for_another_request(env):
    queue = tasks.queue()

    def work(task: Task) -> None:
        with queue.slot(cancel=task.cancelled, on_wait=task.queued, background=True):
            pass

    with queue.slot():  # another session computes: the job waits
        at = session()
        job = Task(work, background=True)
        at.session_state[TASKS] = {"erf": job.start()}
        at.switch_page("../pages/erf_explorer.py").run()
        assert any("(queued job): queued, position 1" in i.value for i in at.info), [i.value for i in at.info]
        at.button[0].click().run()
        assert any("a queued job is still computing here" in e.value for e in at.error)
        assert at.session_state[TASKS]["erf"] is job and not job.cancelled()
        at.button(key="erf-cancel-queued").click().run()
        assert job.wait(10) and job.state == "cancelled"


# ----- isolation


def _upload(name: str, sample: int = 0) -> state.ImageItem:
    return state.upload_item(name, Path(builtin_samples()[sample].path).read_bytes())


def test_two_sessions_never_see_each_other_s_uploads_even_with_the_same_file_name(env):
    a, b = session(), session()
    a.session_state[state.IMAGES_KEY] = [_upload("scan.dcm", 0)]
    b.session_state[state.IMAGES_KEY] = [_upload("scan.dcm", 4)]
    rows = []
    for at in (a, b):
        at.switch_page("../pages/images.py").run()
        assert not at.exception
        rows.append(at.dataframe[0].value)
    assert len(rows[0]) == len(rows[1]) == 1
    assert rows[0]["size (rows x cols)"].iloc[0] != rows[1]["size (rows x cols)"].iloc[0]  # each its own image
    assert a.session_state[state.IMAGES_KEY][0].key != b.session_state[state.IMAGES_KEY][0].key


def test_the_same_image_in_two_sessions_is_computed_once_and_keeps_each_session_s_name(env, monkeypatch):
    computed = []
    attribute = compute.attribute
    monkeypatch.setattr(compute, "attribute", lambda *args, **kw: computed.append(args[2]) or attribute(*args, **kw))
    compute._attribution.clear()
    a, b = session(), session()
    a.session_state[state.IMAGES_KEY] = [_upload("alice-jones.dcm")]
    b.session_state[state.IMAGES_KEY] = [_upload("bob-smith.dcm")]
    a.switch_page("../pages/attention.py").run()
    first = len(computed)
    assert first >= 1 and not a.exception
    b.switch_page("../pages/attention.py").run()
    assert not b.exception and len(computed) == first  # the same content: b shares a's computation
    assert "alice" not in shown(b) and "bob-smith" in shown(b)
    assert "bob" not in shown(a)
    assert set(b.session_state[TASKS]) and all(
        t is not a.session_state[TASKS].get(k) for k, t in b.session_state[TASKS].items()
    )


def test_a_session_follows_and_cancels_only_its_own_training_jobs(env, monkeypatch):
    from hct.data import generate_phantom

    from app import loaders

    generate_phantom(8, env / "phantom", size=(96, 64))
    a, b = session("training"), session("training")
    store = loaders.job_store()
    config = {
        "manifest": str(env / "phantom" / "manifest.csv"),
        "model": "gmic",
        "stage": "image",
        "input_size": [96, 64],
        "device": "cpu",
        "epochs": 500,
        "out_dir": str(env / "run"),
    }  # runs until cancelled
    a.session_state[state.OWNER_KEY] = "session:a"
    job = store.submit(config, owner="session:a")
    a.run()
    b.run()
    assert a.dataframe[0].value["launched by"].tolist() == ["you"]
    assert b.dataframe[0].value["launched by"].tolist() == ["another session"]
    assert not [x for x in b.button if x.label == "Cancel job"] and not [
        x for x in b.selectbox if x.label == "Follow job"
    ]
    next(x for x in a.button if x.label == "Cancel job").click().run()
    assert store.get(job.id).state == "cancelled"


# ----- a fresh checkout


@pytest.mark.slow
def test_a_fresh_checkout_generates_the_phantom_and_trains_with_live_curves(env, monkeypatch):
    monkeypatch.setattr(data_roots, "REPOSITORY", env)  # a checkout without data/
    write = tasks.write_phantom
    monkeypatch.setattr(
        tasks,
        "write_phantom",
        lambda counts, out, size, progress, cancel: write(8, out, size=(96, 64), progress=progress, cancel=cancel),
    )  # the page's smallest choice, smaller still
    at = session("training")
    assert any("not there yet" in i.value for i in at.info)
    next(b for b in at.button if b.label == "Generate the phantom data set").click().run()
    task = at.session_state[TASKS]["phantom"]
    assert task.wait(120) and task.state == "done", task.error
    at.run()
    assert (env / "data" / "phantom" / "manifest.csv").is_file()
    assert not at.exception and not at.error and not any("not there yet" in i.value for i in at.info)
    at.number_input[2].set_value(32)  # patch size
    at.number_input[5].set_value(3)  # max steps
    at.selectbox[1].set_value("image")
    at.selectbox[3].set_value("416x320")
    next(b for b in at.button if b.label == "Launch").click().run()
    assert not at.error, [e.value for e in at.error]
    from app import loaders

    job = loaders.job_store().list()[0]
    deadline = time.monotonic() + 240
    while not loaders.job_store().metrics(job.id) and time.monotonic() < deadline:
        time.sleep(1)
    at.run()
    assert at.get("plotly_chart"), [e.value for e in at.caption]  # the job's curves
    assert at.dataframe[1].value["rank"].tolist() == [0]
    loaders.job_store().cancel(job.id)


# ----- sign-on


def test_with_sign_on_a_visitor_who_has_not_signed_in_sees_only_the_sign_in(env):
    at = AppTest.from_file(HOME, default_timeout=120)
    at.user = {"is_logged_in": False}  # what st.user says when .streamlit/secrets.toml has [auth]
    at.run()
    assert not at.exception
    assert [b.label for b in at.button] == ["Sign in"] and not at.dataframe and not at.sidebar.children
    for page in ("images", "training"):
        at.switch_page(f"../pages/{page}.py").run()
        assert [b.label for b in at.button] == ["Sign in"] and not at.dataframe and not at.text_input


def test_a_signed_in_user_owns_their_jobs_across_sessions(env):
    at = AppTest.from_file(HOME, default_timeout=120)
    at.user = {"is_logged_in": True, "email": "radiologist@hospital.example"}
    at.run()
    assert not at.exception and "Signed in as radiologist@hospital.example" in shown(at)
    assert [b.label for b in at.sidebar.button] == ["Sign out"]


# ----- patient data

IDENTITY = {
    "PatientName": "Qzdoexq^Qzjanexq",
    "PatientID": "PID0042SECRET",
    "PatientBirthDate": "19600101",
    "AccessionNumber": "ACC777SECRET",
    "OtherPatientIDs": "OTHER99SECRET",
}
IDENTITY_TEXT = ("Qzdoexq", "Qzjanexq", "PID0042SECRET", "19600101", "ACC777SECRET", "OTHER99SECRET")


def _tagged_data_set(folder: Path) -> Path:
    """A phantom whose DICOMs carry identity tags, and a manifest naming the patients by their PatientID
    (as a hospital's export would)."""
    import dataclasses

    import pydicom

    from hct.data import generate_phantom, write_manifest

    records = generate_phantom(8, folder, size=(128, 96), malignant_fraction=0.5)
    for record in records:
        ds = pydicom.dcmread(record.path)
        for keyword, value in IDENTITY.items():
            setattr(ds, keyword, value)
        ds.save_as(record.path)
    write_manifest([dataclasses.replace(r, patient_id=IDENTITY["PatientID"]) for r in records], folder / "tagged.csv")
    return folder / "tagged.csv"


def _contents(data) -> list[bytes]:
    """A download's bytes, and those of each member when it is a zip."""
    import io
    import zipfile

    data = data() if callable(data) else data
    data = data.encode() if isinstance(data, str) else bytes(data.getvalue() if hasattr(data, "getvalue") else data)
    if data[:2] == b"PK":
        with zipfile.ZipFile(io.BytesIO(data)) as archive:
            return [data, *(archive.read(name) for name in archive.namelist())]
    return [data]


def test_no_download_and_no_log_carries_patient_identity(env, monkeypatch, caplog, capfd):
    import logging

    import pydicom
    from streamlit.elements.widgets.button import ButtonMixin

    monkeypatch.setenv(ROOTS_ENV, str(env))
    manifest = _tagged_data_set(env / "tagged")
    downloads = []
    original = ButtonMixin._download_button

    def recording(self, label, data, *args, **kwargs):
        downloads.append((label, data))
        return original(self, label, data, *args, **kwargs)

    monkeypatch.setattr(ButtonMixin, "_download_button", recording)
    caplog.set_level(logging.DEBUG)
    at = session("images")
    at.radio[0].set_value("Manifest").run()
    at.text_input(key=PATH_KEY + "images-Manifest").set_value(str(manifest)).run()
    next(b for b in at.button if b.label.startswith("Use ")).click().run()
    items = at.session_state[state.IMAGES_KEY]
    tagged_upload = state.upload_item("upload.dcm", Path(items[0].record.path).read_bytes())
    for page in [*PAGES, "attention", "erf_explorer"]:
        if page == "attention":
            at.session_state[state.IMAGES_KEY] = [tagged_upload, *items[1:]]  # an upload too
        at.switch_page(f"../pages/{page}.py").run()
        for radio in at.radio:  # e.g. Breakdowns: compute predictions for the tagged images
            radio.set_value(next((o for o in radio.options if o.startswith("Compute")), radio.value)).run()
        for button in [b for b in at.button if b.label.startswith("Compute")]:
            button.click().run()
        assert not at.exception, (page, at.exception)
    labels = {label for label, _ in downloads}
    assert {"Curves (CSV)", "Figures (HTML)", "Figure (PNG)", "Predictions (CSV)"} <= labels, labels
    for label, data in downloads:
        for content in _contents(data):
            for text in IDENTITY_TEXT:
                assert text.encode() not in content, (label, text)
            if content[128:132] == b"DICM":  # a DICOM export holds no identity: DICOM's required patient fields empty
                ds = pydicom.dcmread(__import__("io").BytesIO(content))
                assert not [k for k in IDENTITY if ds.get(k)], label
    logged = caplog.text + "".join(capfd.readouterr())
    for text in IDENTITY_TEXT:
        assert text not in logged, text
