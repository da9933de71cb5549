"""Every page of the Streamlit app under AppTest: renders on the built-in data, main widgets, main action."""

import dataclasses
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from app import compute
from app.compute import TASKS
from hct.serving import Task

HOME = str(Path(__file__).resolve().parent.parent / "app" / "Home.py")


@pytest.fixture()
def app(monkeypatch, tmp_path):
    monkeypatch.setenv("HCT_APP_MAX_SIZE", "64x48")
    monkeypatch.setenv("HCT_APP_JOB_STORE", str(tmp_path / "jobs.sqlite"))
    at = AppTest.from_file(HOME, default_timeout=240)
    at.run()
    assert not at.exception
    return at


def open_page(at: AppTest, name: str) -> AppTest:
    at.switch_page(f"../pages/{name}.py").run()
    assert not at.exception, at.exception
    assert not at.error, [e.value for e in at.error]
    return at


def test_home_lists_models_and_samples(app):
    assert app.title[0].value == "HCT Explorer"
    assert len(app.dataframe) == 2
    assert len(app.dataframe[1].value) == 8  # the built-in samples
    assert len(app.dataframe[0].value) >= 5  # the checkpoints, then the five architectures
    assert any("Device:" in e.value for e in [*app.sidebar.warning, *app.sidebar.success])


def test_models_page_loads_a_model(app):
    at = open_page(app, "models")
    load = next(b for b in at.button if b.label.startswith("Load on"))
    load.click().run()
    assert not at.exception and not at.error
    assert any(b.label == "Unload" for b in at.button)
    # the first card is a shipped checkpoint; once loaded it is listed in the sidebar
    assert any("GMIC" in m.value and "cpu" in m.value for m in at.sidebar.markdown)


def test_images_page_shows_four_views_and_rejects_a_bad_manifest(app):
    at = open_page(app, "images")
    assert len(at.dataframe[0].value) == 8
    assert "patient_id" not in at.dataframe[0].value.columns
    assert at.radio[1].options == ["Four-view exam", "One image"]
    assert len(at.get("plotly_chart")) == 4
    at.radio[0].set_value("Manifest").run()
    at.text_input[0].set_value("data/nonexistent/manifest.csv").run()
    assert at.error and "does not exist" in at.error[0].value and "nonexistent/manifest.csv" in at.error[0].value
    assert not at.exception


def test_images_page_checks_a_public_data_set_as_downloaded(app, tmp_path, monkeypatch):
    import public_trees

    monkeypatch.setenv("HCT_DATA_ROOTS", str(tmp_path))
    public_trees.cmmd_tree(tmp_path)
    at = open_page(app, "images")
    at.radio[0].set_value("Public data set").run()
    at.selectbox[0].set_value("cmmd").run()
    at.text_input[0].set_value(str(tmp_path)).run()
    assert not at.exception and not at.error
    report = at.text[0].value
    assert "usable images: 12 (the table lists 6 breasts)" in report and "missing breasts: 1" in report
    assert "D2-0002" not in report and "spreadsheet row 7 (R)" in report  # subjects are not named
    next(b for b in at.button if b.label.startswith("Use ")).click().run()
    assert not at.exception and not at.error


def test_erf_explorer_computes_two_models(app):
    at = open_page(app, "erf_explorer")
    assert at.multiselect[0].value == ["ckpt:gmic", "ckpt:hct_performer_relu"]  # the shipped checkpoints
    assert at.selectbox[0].value == "card" and at.selectbox[0].options[0] == "64x48 (model card)"
    at.number_input[0].set_value(2)
    at.button[0].click().run()
    assert not at.exception and not at.error
    assert len(at.get("plotly_chart")) == 3  # maps, curves over columns, curves over rows
    metrics = at.dataframe[0].value
    assert list(metrics.columns) == ["gmic (all, N=2)", "hct_performer_relu (all, N=2)"]
    assert len(at.get("download_button")) == 3
    at.toggle[0].set_value(True).run()
    assert not at.exception


def test_erf_explorer_left_subset(app):
    at = open_page(app, "erf_explorer")
    at.radio[0].set_value("left")
    at.number_input[0].set_value(1)
    at.button[0].click().run()
    assert not at.exception and not at.error
    assert "N=1" in at.dataframe[0].value.columns[0]


def test_attention_page_probability_overlays_and_erf(app):
    at = open_page(app, "attention")
    assert at.metric[0].value.endswith("%")
    assert at.number_input(key="attn-row").value == 32
    at.number_input(key="attn-row").set_value(10).run()
    assert not at.exception and not at.error
    at.button[0].click().run()
    assert not at.exception and not at.error
    assert len(at.get("plotly_chart")) == 2 + 1 + 3  # two overlays, attention, ERF map and curves


def test_breakdowns_opens_on_the_shipped_predictions(app):
    at = open_page(app, "breakdowns")  # no click
    assert at.radio[0].value == "Shipped checkpoints" and not at.main.warning
    table3 = at.dataframe[0].value
    assert list(table3["Model"]) == ["def_gmic", "gmic", "hct_nystrom", "hct_performer_relu", "hct_performer_softmax"]
    assert (table3["Patch AUC [95% CI]"] == "—").all()  # today's cards lack patch_test_auc
    assert table3["Image AUC [95% CI]"].str.match(r"\d+\.\d\d \[\d+\.\d\d, \d+\.\d\d\]$").all()
    assert len(at.get("plotly_chart")) == 4  # finding type, ROC, size thresholds, tertiles
    assert (at.selectbox(key="bd-model").value, at.selectbox(key="bd-reference").value) == ("hct_performer_relu", "gmic")
    assert any("images with no finding at all" in c.value and "left out of both classes" in c.value for c in at.caption)
    at.selectbox(key="bd-reference").set_value("def_gmic").run()
    assert not at.exception and not at.error
    assert at.expander[0].dataframe[1].value["reference"].eq("def_gmic").all()


def test_breakdowns_names_the_models_of_a_stale_file(app, monkeypatch):
    import hct.eval.shipped

    cards = hct.eval.shipped.checkpoint_cards()
    cards["gmic"] = dataclasses.replace(cards["gmic"], weights_sha256="0" * 64)  # as if gmic had been retrained
    monkeypatch.setattr(hct.eval.shipped, "checkpoint_cards", lambda: cards)
    at = open_page(app, "breakdowns")
    warnings = [w.value for w in at.main.warning]
    assert len(warnings) == 1 and "**gmic**" in warnings[0] and "000000000000" in warnings[0]
    assert "def_gmic" not in warnings[0]


def test_breakdowns_computes_predictions_for_other_images(app):
    at = open_page(app, "breakdowns")
    at.radio[0].set_value("Compute for other images").run()
    at.button[0].click().run()
    assert not at.exception and not at.error, [e.value for e in at.error]
    assert len(at.dataframe[0].value) == 2  # Table 3: the two models chosen
    assert len(at.get("plotly_chart")) == 4
    # the samples carry no finding types or sizes: every breakdown says why it is empty
    assert any("No AUC for mass, calcifications, architectural distortion, focal asymmetry: no malignant images" in c.value
               for c in at.caption)


def test_breakdowns_reports_a_missing_file(app):
    at = open_page(app, "breakdowns")
    at.radio[0].set_value("CSV path").run()
    at.text_input[0].set_value("data/nonexistent.csv").run()
    assert at.error and "data/nonexistent.csv" in at.error[0].value and not at.exception


def test_training_form_validates_and_launches(app, tmp_path, monkeypatch):
    monkeypatch.setenv("HCT_DATA_ROOTS", str(tmp_path))
    at = open_page(app, "training")
    at.text_input(key="path-train-manifest").set_value(str(tmp_path / "missing.csv")).run()
    assert at.warning and "missing.csv" in at.warning[0].value
    at.button[0].click().run()
    assert at.error and "missing.csv" in at.error[0].value and not at.exception  # reported, not raised
    from hct.data import generate_phantom

    generate_phantom(8, tmp_path / "phantom", size=(128, 96))
    at.text_input(key="path-train-manifest").set_value(str(tmp_path / "phantom" / "manifest.csv"))
    at.number_input[2].set_value(32)  # patch size
    at.number_input[5].set_value(1)  # max steps
    at.button[0].click().run()
    assert not at.exception and not at.error, [e.value for e in at.error]
    assert at.success and "queued" in at.success[-1].value
    jobs = at.dataframe[0].value
    assert len(jobs) == 1 and jobs["state"].iloc[0] in ("queued", "running", "succeeded", "failed")
    assert jobs["launched by"].iloc[0] == "you"
    from app import loaders

    job = loaders.job_store().list()[0]
    if not job.finished:
        loaders.job_store().cancel(job.id)


def test_a_cancelled_task_says_so_and_keeps_nothing(app):
    def work(task: Task) -> None:
        task.cancel()
        task.check()

    app.session_state[TASKS] = {"erf": Task(work).start()}
    at = app.switch_page("../pages/erf_explorer.py").run()
    assert not at.exception and at.main.warning[0].value == "The ERF was cancelled; nothing was kept."
    assert not at.get("plotly_chart")


def test_a_failed_task_shows_its_message(app):
    from hct.errors import ConfigError

    def work(task: Task) -> None:
        raise ConfigError("no breast in image x.dcm")

    app.session_state[TASKS] = {"erf": Task(work).start()}
    at = app.switch_page("../pages/erf_explorer.py").run()
    assert at.error and at.error[0].value == "The ERF failed: no breast in image x.dcm"


def test_cancel_while_queued_leaves_the_device_queue(app):
    """Another session holds the device: the request waits at position 1; its Cancel button takes it out."""
    compute._erf.clear()
    queue = compute.queue()
    with queue.slot():
        at = open_page(app, "erf_explorer")
        at.number_input[0].set_value(1)
        at.button[0].click().run()
        assert any(i.value.startswith("The ERF: queued, position 1") for i in at.info), [i.value for i in at.info]
        assert queue.waiting == 1 and queue.running == 1
        at.button(key="erf-cancel-queued").click().run()
        task = at.session_state[TASKS]["erf"]
        assert task.wait(10) and task.state == "cancelled"
        assert queue.waiting == 0
    at.run()
    assert at.main.warning[0].value == "The ERF was cancelled; nothing was kept."


def test_a_request_over_the_compute_budget_says_what_to_lower(app, monkeypatch):
    monkeypatch.setenv("HCT_COMPUTE_BUDGET", "0.02")  # 64x48 pixels x 2 models is 0.006 megapixels an image
    at = open_page(app, "erf_explorer")
    at.button[0].click().run()
    assert not at.exception and len(at.error) == 1
    assert "HCT_COMPUTE_BUDGET" in at.error[0].value and "lower N to 3 or fewer" in at.error[0].value
