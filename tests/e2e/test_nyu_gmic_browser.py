"""NYU's GMIC in a real browser: a checkpoint imported from random weights in their format
(``sample_model_N.p`` layout) read on the Attention page: probabilities, both saliency maps, the
patch map and the K crops with their attention weights."""

from pathlib import Path

import pytest
import torch
from playwright.sync_api import expect

from hct.models.card import CHECKPOINT_DIR, checkpoint_paths
from hct.models.nyu_import import import_nyu_gmic
from tests.e2e.test_app_browser import SHOTS, page, server  # noqa: F401  (fixtures)
from tests.nyu_gmic_recipe import seeded_state_dict, their_layout

NAME = "nyu_gmic_e2e_random"


@pytest.fixture(scope="module", autouse=True)
def nyu_checkpoint(tmp_path_factory):
    """Their-format random weights imported into checkpoints/ for the app to list; removed after."""
    source = tmp_path_factory.mktemp("nyu") / "sample_model_1.p"
    torch.save(seeded_state_dict(their_layout()), source)
    import_nyu_gmic(source, 1, CHECKPOINT_DIR / NAME, overwrite=True)
    yield
    for path in checkpoint_paths(CHECKPOINT_DIR / NAME):
        Path(path).unlink(missing_ok=True)


def test_gmic_reading_view_in_the_browser(server, page):  # noqa: F811
    page.goto(f"{server}/attention")
    expect(page.get_by_role("heading", name="Attention", exact=True)).to_be_visible(timeout=60_000)
    page.get_by_test_id("stSelectbox").filter(has_text="Model").click()
    page.get_by_role("option", name=f"GMIC (NYU, full) — {NAME}").click()
    expect(page.get_by_role("tab", name="GMIC: saliency maps and crops")).to_be_visible(timeout=120_000)
    expect(page.get_by_text("Malignant (fusion)")).to_be_visible(timeout=300_000)
    expect(page.get_by_text("Benign (fusion)")).to_be_visible()
    expect(page.get_by_text("saliency map: benign")).to_be_visible()
    expect(page.get_by_text("saliency map: malignant")).to_be_visible()
    expect(page.get_by_text("patch map: the 6 crops")).to_be_visible()
    expect(page.locator(".js-plotly-plot")).to_have_count(3, timeout=60_000)
    expect(page.get_by_test_id("stImage")).to_have_count(6, timeout=60_000)
    expect(page.get_by_text("α = ")).to_have_count(6)
    assert page.locator("[data-testid='stException']").count() == 0
    page.wait_for_timeout(1500)
    page.screenshot(path=SHOTS / "attention_nyu_gmic.png", full_page=True)
