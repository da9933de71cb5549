"""Every page of the Streamlit app under AppTest: renders on the built-in data, main widgets, main action."""

import dataclasses

import pytest
from streamlit.testing.v1 import AppTest

from hct.runtime.serving import Task
from tests.paths import HOME

from app import compute, tasks
from app.tasks import TASKS


def started_app(monkeypatch, tmp_path, max_size: str = "64x48") -> AppTest:
    """The app under AppTest at ``max_size``, with its job store and cache in ``tmp_path``, run once."""
    monkeypatch.setenv("HCT_APP_MAX_SIZE", max_size)
    monkeypatch.setenv("HCT_APP_JOB_STORE", str(tmp_path / "jobs.sqlite"))
    monkeypatch.setenv("HCT_CACHE_DIR", str(tmp_path / "cache"))
    at = AppTest.from_file(HOME, default_timeout=240)
    at.run()
    assert not at.exception
    return at


@pytest.fixture()
def app(monkeypatch, tmp_path):
    return started_app(monkeypatch, tmp_path)


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
    from hct.data import read_manifest
    from tests import public_trees

    monkeypatch.setenv("HCT_DATA_ROOTS", str(tmp_path))
    public_trees.cmmd_tree(tmp_path)
    at = open_page(app, "images")
    at.radio[0].set_value("Public data set").run()
    at.selectbox[0].set_value("cmmd").run()
    at.text_input[0].set_value(str(tmp_path)).run()
    assert not at.exception and not at.error
    assert (
        at.warning[0].value == "12 usable images (the table lists 6 breasts); missing breasts: 1; unreadable images: 0"
    )
    report = at.text[0].value
    assert "usable images: 12 (the table lists 6 breasts)" in report and "missing breasts: 1" in report
    assert "D2-0002" not in report and "spreadsheet row 7 (R)" in report  # subjects are not named
    next(b for b in at.button if b.label.startswith("Use ")).click().run()
    assert not at.exception and not at.error
    first = at.session_state[TASKS]["data-check"]
    next(b for b in at.button if b.label == "Check again").click().run()
    assert at.session_state[TASKS]["data-check"] is not first and not at.exception and at.warning
    # the checked images as a training manifest, under the data roots; an existing one is replaced only when asked
    target = tmp_path / "cmmd.csv"
    at.toggle(key="images-manifest-writer").set_value(True).run()
    at.text_input(key="path-images-write-manifest").set_value(str(target)).run()
    next(b for b in at.button if b.label == "Write manifest").click().run()
    assert at.success and at.success[-1].value.startswith(f"Wrote {target}: 10 labelled images")
    assert len(read_manifest(target)) == 10  # the two images of a breast the spreadsheet does not list are left out
    next(b for b in at.button if b.label == "Write manifest").click().run()
    assert "exists already" in at.error[0].value
    at.checkbox(key="images-replace-manifest").check().run()
    next(b for b in at.button if b.label == "Write manifest").click().run()
    assert not at.error and at.success[-1].value.startswith(f"Wrote {target}")
    at.text_input(key="path-images-write-manifest").set_value("/etc/cmmd.csv").run()
    assert "not readable here" in at.error[0].value


def test_erf_explorer_computes_two_models(app):
    at = open_page(app, "erf_explorer")
    assert at.multiselect[0].value == ["ckpt:gmic", "ckpt:hct_performer_relu"]  # the shipped checkpoints
    assert at.selectbox[0].value == "card" and at.selectbox[0].options[0] == "64x48 (model card)"
    assert at.radio(key="erf-reduction").value == "mean_abs" and at.selectbox(key="erf-stage").value == 5
    at.number_input(key="erf-n").set_value(2)
    at.button[0].click().run()
    assert not at.exception and not at.error
    assert len(at.get("plotly_chart")) == 3  # maps, curves across rows and across columns
    at.toggle(key="erf-per-image").set_value(True).run()
    assert len(at.get("plotly_chart")) == 4  # and the per-image maps
    metrics = at.dataframe[0].value
    assert list(metrics["model"]) == ["gmic", "hct_performer_relu"] and set(metrics["n"]) == {2}
    assert len(at.get("download_button")) == 4
    at.selectbox(key="erf-scale").set_value("log10").run()
    at.select_slider(key="erf-clip").set_value(99.0).run()
    assert not at.exception and not at.error


def test_erf_explorer_left_subset_stage_and_typed_position(app):
    at = open_page(app, "erf_explorer")
    at.radio(key="erf-subset").set_value("left")
    at.number_input(key="erf-n").set_value(1)
    at.selectbox(key="erf-stage").set_value(3)
    at.checkbox[0].set_value(False)
    at.number_input[1].set_value(1)  # stage 3 of HCT at 64x48 is 2x2
    at.button[0].click().run()
    assert not at.exception and not at.error
    metrics = at.dataframe[0].value
    assert set(metrics["subset"]) == {"left"} and set(metrics["stage"]) == {3} and set(metrics["position"]) == {"1,0"}


def test_erf_explorer_position_off_the_map_is_a_clear_message(app):
    at = open_page(app, "erf_explorer")
    at.number_input(key="erf-n").set_value(1)
    at.checkbox[0].set_value(False)
    at.number_input[1].set_value(500)
    at.button[0].click().run()
    assert not at.exception and at.error and "outside the" in at.error[0].value


def test_erf_explorer_table1(app):
    at = open_page(app, "erf_explorer")
    assert at.number_input(key="table1-n").value == 4  # the samples hold 4 left and 4 right breasts
    at.number_input(key="table1-n").set_value(2)
    next(b for b in at.button if b.label == "Compute Table 1").click().run()
    assert not at.exception and not at.error
    metrics = at.dataframe[0].value
    assert list(metrics["subset"]) == ["all", "right", "left", "right - left"] * 2
    assert len(at.get("plotly_chart")) == 1 and len(at.get("download_button")) == 1


def open_view(at: AppTest, view: str) -> AppTest:
    at.session_state["attn-view"] = view  # the tabs run only the open view
    at.run()
    assert not at.exception and not at.error, (at.exception, [e.value for e in at.error])
    return at


def test_attention_overlays_carry_what_made_them(app):
    at = open_page(app, "attention")
    assert at.metric[0].value.endswith("%")
    captions = [c.value for c in at.caption]
    for name in ("Grad-CAM at stages.4", "saliency"):
        assert any(
            c.startswith(f"{name} · HCT (Performer-RELU)") and c.endswith("sfm-benign-0/1-130 · 64x48")
            for c in captions
        ), captions
    assert len(at.get("plotly_chart")) == 2 and len(at.get("download_button")) == 4  # PNG and DICOM each


def test_opacity_changes_never_recompute(app, monkeypatch):
    from app import compute

    calls = []
    attribute = compute.attribute
    monkeypatch.setattr(compute, "attribute", lambda *a, **k: calls.append(a[2]) or attribute(*a, **k))
    compute._attribution.clear()
    at = open_page(app, "attention")
    assert sorted(calls) == ["gradcam", "saliency"]
    task = at.session_state[TASKS]["attn-overlays"]
    at.slider(key="attn-opacity").set_value(0.9).run()
    at.slider(key="attn-percentile").set_value(95.0).run()
    assert not at.exception and len(at.get("plotly_chart")) == 2
    assert sorted(calls) == ["gradcam", "saliency"] and at.session_state[TASKS]["attn-overlays"] is task


def test_attention_of_a_position_keeps_the_layer_input(app, monkeypatch):
    from app import compute

    calls = []
    layer_input = compute.layer_input
    monkeypatch.setattr(compute, "layer_input", lambda *a, **k: calls.append(1) or layer_input(*a, **k))
    compute._layer_input.clear()
    at = open_view(open_page(app, "attention"), "Attention of a position")
    assert at.number_input(key="attn-row").value == 32
    at.number_input(key="attn-row").set_value(10).run()
    assert not at.exception and not at.error
    assert any("from model-input position (10, 24)" in c.value for c in at.caption)
    assert len(calls) == 1  # two queries, one forward pass to the layer


def test_switching_the_image_clears_the_single_image_erf(app):
    at = open_view(open_page(app, "attention"), "Single-image ERF")
    at.button[0].click().run()
    assert not at.exception and not at.error
    assert len(at.get("plotly_chart")) == 3  # the map over the image, and its two curves
    assert any(c.value.startswith("sqrt |ERF|") and "1-130" in c.value for c in at.caption)
    images = at.selectbox(key="attn-image")
    images.set_value(images.options[1]).run()  # another image of the same size
    assert not at.exception and not at.get("plotly_chart")
    assert not any(c.value.startswith("sqrt |ERF|") for c in at.caption)


def test_exam_mode_hangs_four_views_with_breast_scores(app):
    at = open_page(app, "attention")
    at.button_group[0].set_value("Four-view exam").run()
    assert not at.exception and not at.error, [e.value for e in at.error]
    views = [c.value.split(" · ")[0] for c in at.caption if " · P(malignant) " in c.value]
    assert views == ["R-CC", "L-CC", "R-MLO", "L-MLO"]
    assert len(at.get("plotly_chart")) == 4
    assert [m.label for m in at.metric] == ["Right breast: mean over its views", "Left breast: mean over its views"]
    exam = at.selectbox(key="attn-exam-id")
    assert exam.options == ["sfm-benign-0", "sfm-malign-0"]


def test_an_image_with_a_finding_shows_where_each_map_points(app, tmp_path):
    from hct.data import generate_phantom

    from app.state import IMAGES_KEY, record_item

    records = generate_phantom(4, tmp_path / "ph", size=(128, 96), malignant_fraction=1.0, benign_fraction=0.0)
    app.session_state[IMAGES_KEY] = [record_item(r) for r in records if r.finding_boxes][:1]
    at = open_page(app, "attention")
    table = at.dataframe[0].value
    assert list(table["method"]) == ["Grad-CAM at stages.4", "saliency"]
    assert table["energy inside the finding"].dropna().between(0, 1).all()  # NaN: a map without positive mass
    assert (table["area share (a uniform map's energy)"] > 0).all()
    assert set(table["finding outlined by"]) == {"box"}


def test_a_cbis_ddsm_finding_is_scored_against_its_roi_mask(app, tmp_path):
    from hct.data import scan_cbis_ddsm
    from tests import public_trees

    from app.state import IMAGES_KEY, record_item

    folder = public_trees.cbis_ddsm_tree(tmp_path, csvs=("mass_case_description_test_set.csv",))
    records = scan_cbis_ddsm(sorted(tmp_path.glob("*.csv")), folder).records
    app.session_state[IMAGES_KEY] = [record_item(next(r for r in records if r.label == 1 and r.finding_masks))]
    at = open_page(app, "attention")
    assert set(at.dataframe[0].value["finding outlined by"]) == {"ROI mask"}


def test_a_finding_box_outside_the_image_is_named(app, tmp_path):
    import dataclasses

    from hct.data import generate_phantom

    from app.state import IMAGES_KEY, record_item

    record = generate_phantom(4, tmp_path / "ph", size=(128, 96), malignant_fraction=1.0, benign_fraction=0.0)[0]
    app.session_state[IMAGES_KEY] = [record_item(dataclasses.replace(record, finding_boxes=((10, 10, 500, 20),)))]
    at = app.switch_page("../pages/attention.py").run()
    assert not at.exception
    assert any("finding box (10, 10, 500, 20)" in e.value and "outside the 128x96 image" in e.value for e in at.error)


def test_another_modality_is_read_with_a_visible_warning(app):
    from pydicom.data import get_testdata_file

    from app.state import IMAGES_KEY, upload_item

    with open(get_testdata_file("CT_small.dcm"), "rb") as handle:
        app.session_state[IMAGES_KEY] = [upload_item("CT_small.dcm", handle.read())]
    at = open_page(app, "attention")
    assert any("CT_small.dcm: Modality is CT, not MG" in w.value for w in at.warning)


def test_breakdowns_opens_on_the_shipped_predictions(app):
    at = open_page(app, "breakdowns")  # no click
    assert at.radio[0].value == "Shipped checkpoints" and not at.main.warning
    table3 = at.dataframe[0].value
    assert sorted(table3["Model"]) == ["def_gmic", "gmic", "hct_nystrom", "hct_performer_relu", "hct_performer_softmax"]
    assert (table3["Patch AUC [95% CI]"] == "—").all()  # today's cards lack patch_test_auc
    assert table3["Image AUC [95% CI]"].str.match(r"\d+\.\d\d \[\d+\.\d\d, \d+\.\d\d\]$").all()
    assert len(at.get("plotly_chart")) == 4  # finding type, ROC, size thresholds, tertiles
    assert (at.selectbox(key="bd-model").value, at.selectbox(key="bd-reference").value) == (
        "hct_performer_relu",
        "gmic",
    )
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
    assert any(
        "No AUC for mass, calcifications, architectural distortion, focal asymmetry: no malignant images" in c.value
        for c in at.caption
    )


def test_breakdowns_scores_where_explanations_point(app, tmp_path):
    from hct.data import generate_phantom

    from app.state import IMAGES_KEY, record_item

    records = generate_phantom(4, tmp_path / "ph", size=(128, 96), malignant_fraction=1.0, benign_fraction=0.0)
    app.session_state[IMAGES_KEY] = [record_item(r) for r in records if r.finding_boxes][:2]
    at = open_page(app, "breakdowns")
    at.button_group[0].set_value("Where explanations point").run()
    at.button[0].click().run()
    assert not at.exception and not at.error, [e.value for e in at.error]
    summary = at.dataframe[0].value
    assert list(summary["method"]) == ["gradcam", "saliency", "attention"] and (summary["n_images"] == 2).all()
    assert {"energy", "energy_low", "energy_high", "hit_rate", "area_share"} <= set(summary.columns)


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
    compute._erfs.clear()
    queue = tasks.queue()
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
