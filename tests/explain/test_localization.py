"""Localization on the phantom, whose boxes are exact: an oracle map scores 1, a uniform map the
box's area share; the pointing game's tolerance; boxes outside the image; the command."""

import csv
import dataclasses

import numpy as np
import pytest
import torch

from hct.__main__ import main
from hct.data import generate_phantom, preprocess, read_mammogram, write_manifest
from hct.errors import MammogramError
from hct.explain.display.overlays import point_in_original
from hct.explain.localization import (
    check_boxes,
    energy_inside,
    finding_mask,
    localize,
    pointing_hit,
    score,
    summarise,
)
from hct.models import create_model

SIZE = (128, 96)


@pytest.fixture(scope="module")
def phantom(tmp_path_factory):
    folder = tmp_path_factory.mktemp("phantom")
    records = generate_phantom(6, folder, size=(256, 192), malignant_fraction=1.0, benign_fraction=0.0)
    return folder, [r for r in records if r.finding_boxes]


def oracle_map(pre, boxes) -> np.ndarray:
    """The boxes drawn in the original image, sampled at each model pixel's centre (no model involved)."""
    rows, cols = np.mgrid[: pre.size[0], : pre.size[1]] + 0.5
    original = [point_in_original(pre, (r, c), long_side=None) for r, c in zip(rows.ravel(), cols.ravel())]
    inside = [any(b[0] <= r < b[2] and b[1] <= c < b[3] for b in boxes) for r, c in original]
    return np.array(inside, dtype=np.float32).reshape(pre.size)


def test_an_oracle_map_scores_one_and_a_uniform_map_the_area_share(phantom):
    _, records = phantom
    assert len(records) >= 4 and any(read_mammogram(r.path).meta.laterality == "R" for r in records)  # flipped ones too
    for record in records:
        pre = preprocess(read_mammogram(record.path), SIZE)
        mask = finding_mask(pre, record.finding_boxes)
        oracle = score(oracle_map(pre, record.finding_boxes), mask)
        assert oracle["energy"] == pytest.approx(1.0) and oracle["hit"], record.image_id
        uniform = score(np.ones(SIZE), mask)
        assert uniform["energy"] == pytest.approx(mask.mean()) == pytest.approx(uniform["area_share"])
        assert 0 < uniform["area_share"] < 0.5


def test_the_pointing_game_tolerates_fifteen_pixels():
    mask = np.zeros((100, 100), bool)
    mask[40:60, 40:60] = True
    for peak_col, hit in ((59, True), (74, True), (75, False)):  # 15 px past the last column (59) still hits
        heat = np.zeros((100, 100))
        heat[50, peak_col] = 1
        assert pointing_hit(heat, mask) is hit
    assert np.isnan(energy_inside(np.zeros((100, 100)), mask))


def test_a_box_outside_the_image_is_named(phantom, tmp_path):
    with pytest.raises(MammogramError, match=r"finding box \(0, 0, 300, 10\) .* outside the 256x192 image"):
        check_boxes([(0, 0, 300, 10)], (256, 192), "img")
    _, records = phantom
    bad = dataclasses.replace(records[0], finding_boxes=((10, 10, 20, 900),))
    with pytest.raises(MammogramError, match="outside"):
        localize({"m": create_model("gmic")}, [bad], ["saliency"], SIZE)


def test_localize_scores_every_image_model_and_method(phantom):
    _, records = phantom
    torch.manual_seed(0)
    models = {"gmic": create_model("gmic"), "hct": create_model("hct_performer_relu")}
    rows = localize(models, records[:2], ["gradcam", "attention"], SIZE)
    assert len(rows) == 2 * (2 + 1)  # attention only for HCT
    assert set(rows["method"]) == {"gradcam", "attention"} and rows["energy"].dropna().between(0, 1).all()
    summary = summarise(rows, n_boot=200)
    assert len(summary) == 3 and (summary["n_images"] == 2).all()
    assert summary["n_empty"].sum() == rows["energy"].isna().sum()
    summary = summary.dropna()
    assert (summary["energy_low"] <= summary["energy"]).all() and (summary["energy"] <= summary["energy_high"]).all()


def test_the_localize_command_writes_rows_summary_and_figure(phantom, tmp_path):
    folder, records = phantom
    write_manifest([dataclasses.replace(r, split="test") for r in records[:2]], tmp_path / "m.csv")
    out = tmp_path / "out"
    assert (
        main(
            [
                "localize",
                "--model",
                "gmic",
                "--data",
                str(tmp_path / "m.csv"),
                "--split",
                "test",
                "--methods",
                "saliency",
                "gradcam",
                "--size",
                "128x96",
                "--n-boot",
                "100",
                "--out",
                str(out),
            ]
        )
        == 0
    )
    with open(out / "localization.csv") as f:
        rows = list(csv.DictReader(f))
    assert len(rows) == 4 and {"image_id", "model", "method", "energy", "hit", "finding_area_px"} <= set(rows[0])
    assert (out / "localization_summary.csv").stat().st_size > 0 and (out / "localization.png").stat().st_size > 0


def test_a_box_drawn_as_a_mask_covers_what_the_box_covers(phantom):
    _, records = phantom
    for record in records:
        image = read_mammogram(record.path)
        pre = preprocess(image, SIZE)
        outline = np.zeros(image.pixels.shape, bool)
        for row0, col0, row1, col1 in record.finding_boxes:
            outline[row0:row1, col0:col1] = True
        from_mask, from_boxes = pre.to_model_mask(outline), finding_mask(pre, record.finding_boxes)
        assert (from_mask & from_boxes).sum() / (from_mask | from_boxes).sum() > 0.8, record.image_id
    speck = np.zeros(image.pixels.shape, bool)
    speck[100, 100] = True  # one original pixel, under a model pixel's half: still one model pixel
    assert pre.to_model_mask(speck).sum() >= 1


def test_cbis_ddsm_findings_are_scored_against_their_roi_masks(tmp_path):
    from hct.data import scan_cbis_ddsm
    from hct.explain.localization import finding_region
    from tests import public_trees

    folder = public_trees.cbis_ddsm_tree(tmp_path, csvs=("mass_case_description_test_set.csv",))
    records = [
        r for r in scan_cbis_ddsm(sorted(tmp_path.glob("*.csv")), folder).records if r.label == 1 and r.finding_masks
    ]
    assert records
    record = records[0]
    pre = preprocess(read_mammogram(record.path), SIZE)
    region, outlined_by = finding_region(pre, record)
    assert outlined_by == "ROI mask" and score(region.astype(float), region)["energy"] == pytest.approx(1.0)
    rows = localize({"gmic": create_model("gmic")}, records, ["saliency"], SIZE)
    assert set(rows["region"]) == {"ROI mask"} and len(rows) == len(records)
    assert set(
        localize({"gmic": create_model("gmic")}, [dataclasses.replace(record, finding_masks=())], ["saliency"], SIZE)[
            "region"
        ]
    ) == {"box"}
    gone = dataclasses.replace(record, finding_masks=(str(tmp_path / "moved.dcm"),))
    with pytest.raises(MammogramError, match="ROI mask .*moved.dcm is missing .* data check"):
        localize({"gmic": create_model("gmic")}, [gone], ["saliency"], SIZE)


def test_localize_takes_cancel_like_the_erf_engine(phantom):
    from hct.errors import ComputationCancelled

    _, records = phantom
    seen = []
    with pytest.raises(ComputationCancelled, match="localization cancelled after 1 of"):
        localize(
            {"gmic": create_model("gmic")},
            records[:2],
            ["saliency"],
            SIZE,
            progress=lambda done, total: seen.append(done),
            cancel=lambda: True,
        )
    assert seen == [1]
