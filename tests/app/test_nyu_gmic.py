"""The reading view for NYU's GMIC under AppTest: its four panels and K crops."""

import pytest

from tests.app.test_pages import started_app


@pytest.fixture()
def app(monkeypatch, tmp_path):
    return started_app(monkeypatch, tmp_path, "128x96")


def test_gmic_reading_view_shows_probabilities_saliency_patches_and_crops(app):
    at = app.switch_page("../pages/attention.py").run()
    at.selectbox(key="attn-model").set_value("init:nyu_gmic").run()
    assert not at.exception and not at.error, [e.value for e in at.error]
    assert [m.label for m in at.metric] == ["Benign (fusion)", "Malignant (fusion)"]
    assert all(m.value.endswith("%") for m in at.metric)
    assert sum(c.value.startswith("global ") and " · local " in c.value for c in at.caption) == 2
    captions = [c.value for c in at.caption]
    assert any(c.startswith("saliency map: benign") for c in captions)
    assert any(c.startswith("saliency map: malignant") for c in captions)
    assert any(c.startswith("patch map: the 6 crops") for c in captions)
    assert len(at.get("plotly_chart")) == 3
    crops = at.get("image")
    assert len(crops) == 6 and all(c.proto.imgs[0].caption.startswith("α = ") for c in crops)
    assert [b.label for b in at.get("download_button")][:2] == ["PNG", "DICOM"]


def test_gmic_other_views_and_exam_take_it(app):
    at = app.switch_page("../pages/attention.py").run()
    at.selectbox(key="attn-model").set_value("init:nyu_gmic").run()
    at.session_state["attn-view"] = "Overlays"
    at.run()
    assert not at.exception and not at.error, [e.value for e in at.error]
    assert len(at.get("plotly_chart")) == 2  # Grad-CAM and saliency, on its malignant y_fusion
    at.button_group[0].set_value("Four-view exam").run()
    assert not at.exception and not at.error, [e.value for e in at.error]
    assert len(at.get("plotly_chart")) == 4
    captions = [c.value for c in at.caption if " · P(malignant) " in c.value]
    assert [c.split(" · ")[0] for c in captions] == ["R-CC", "L-CC", "R-MLO", "L-MLO"]
    assert all(" · P(benign) " in c for c in captions)
    assert [m.label for m in at.metric] == [
        "Right breast: mean over its views (malignant)",
        "Left breast: mean over its views (malignant)",
        "Right breast: mean over its views (benign)",
        "Left breast: mean over its views (benign)",
    ]


def test_erf_explorer_takes_its_global_network_beside_gmic(app):
    at = app.switch_page("../pages/erf_explorer.py").run()
    at.multiselect(key="erf-models").set_value(["ckpt:gmic", "init:nyu_gmic"])
    at.number_input(key="erf-n").set_value(1)
    at.button[0].click().run()
    assert not at.exception and not at.error, [e.value for e in at.error]
    metrics = at.dataframe[0].value
    assert list(metrics["model"]) == ["gmic", "nyu_gmic"] and set(metrics["n"]) == {1}
