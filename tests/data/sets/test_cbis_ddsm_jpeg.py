"""CBIS-DDSM's JPEG re-release (jpeg/<SeriesInstanceUID>/*.jpg + csv/dicom_info.csv) read like the TCIA layouts."""

from __future__ import annotations

import shutil

import pandas as pd
import pytest

from hct.__main__ import main
from hct.data import check_data, read_mammogram, read_manifest
from tests import public_trees as trees
from tests.paths import HOME

BOX = trees.mask_box(1)


@pytest.fixture(scope="module")
def jpeg_tree(tmp_path_factory):
    return trees.cbis_ddsm_jpeg_tree(tmp_path_factory.mktemp("cbis-jpeg") / "cbis-ddsm-breast-cancer-image-dataset")


def test_the_jpeg_release_is_read_through_dicom_info(jpeg_tree):
    report = check_data(jpeg_tree, "cbis-ddsm")
    records = {r.image_id: r for r in report.records}
    assert len(records) == 13 and report.listed == 14 and report.missing == ("Mass-Test_P_00018_LEFT_CC",)
    left_cc = records["Mass-Test_P_00016_LEFT_CC"]
    assert (left_cc.label, left_cc.laterality, left_cc.view, left_cc.split) == (1, "L", "CC", "test")
    assert left_cc.path.endswith(".jpg") and read_mammogram(left_cc.path).meta.bit_depth == 8
    # the lossy mask: thresholded at half its maximum, the speck (a smaller component) left out
    assert left_cc.finding_boxes == (BOX,)
    assert records["Mass-Test_P_00016_LEFT_MLO"].finding_boxes == (BOX,)  # swapped in the CSV: found by kind
    benign = records["Mass-Test_P_00017_RIGHT_CC"]  # its full image has no SeriesDescription: taken by size
    assert benign.finding_boxes == (BOX, trees.mask_box(2)) and benign.finding_types == ("mass", "focal_asymmetry")
    assert records["Calc-Test_P_00038_RIGHT_MLO"].finding_boxes == ()
    assert records["Calc-Test_P_00004_LEFT_CC"].split == "test" and "Mass-Training_P_00004_LEFT_CC" not in records
    assert report.notes[0].startswith("JPEG re-release: its pixels are 8-bit lossy JPEGs")
    assert any("Calc-Test_P_00038_RIGHT_MLO_1" in note for note in report.notes)


def test_the_tcia_reader_on_jpegs_without_dicom_info_says_what_is_missing(jpeg_tree, tmp_path):
    shutil.copytree(jpeg_tree / "jpeg", tmp_path / "jpeg")
    for csv in (jpeg_tree / "csv").glob("*case_description*.csv"):
        (tmp_path / csv.name).write_bytes(csv.read_bytes())
    report = check_data(tmp_path, "cbis-ddsm", cache_dir=tmp_path / "cache")
    assert not report.usable and any("csv/dicom_info.csv" in note for note in report.notes)


def test_data_check_and_predict_on_the_jpeg_release(jpeg_tree, tmp_path, capsys):
    manifest = tmp_path / "cbis_jpeg.csv"
    assert main(["data", "check", str(jpeg_tree), "--format", "cbis-ddsm", "--write-manifest", str(manifest)]) == 0
    out = capsys.readouterr().out
    assert "usable images: 13 (of 14 listed)" in out and "8-bit lossy" in out
    records = read_manifest(manifest)
    assert records and all(r.path.endswith(".jpg") for r in records)
    with_box = [r for r in records if r.finding_masks]
    assert with_box and all(m.endswith(".jpg") for r in with_box for m in r.finding_masks)
    predictions = tmp_path / "preds.csv"
    assert (
        main(
            [
                "predict",
                "--checkpoint",
                "gmic",
                "--data",
                str(manifest),
                "--size",
                "64x48",
                "--device",
                "cpu",
                "--out",
                str(predictions),
            ]
        )
        == 0
    )
    assert len(pd.read_csv(predictions)) == len(records)


def test_localisation_reads_the_lossy_jpeg_masks(jpeg_tree):
    from hct.data.image.preprocess import preprocess
    from hct.explain.localization import finding_region

    record = next(r for r in check_data(jpeg_tree, "cbis-ddsm").records if r.image_id == "Mass-Test_P_00016_LEFT_CC")
    region, kind = finding_region(preprocess(read_mammogram(record.path), (64, 48)), record)
    assert kind == "ROI mask" and region.any()


def test_the_images_page_checks_the_jpeg_release(jpeg_tree, tmp_path, monkeypatch):
    from streamlit.testing.v1 import AppTest

    monkeypatch.setenv("HCT_DATA_ROOTS", str(jpeg_tree))
    monkeypatch.setenv("HCT_APP_JOB_STORE", str(tmp_path / "jobs.sqlite"))
    at = AppTest.from_file(HOME, default_timeout=240)
    at.run()
    at.switch_page("../pages/images.py").run()
    at.radio[0].set_value("Public data set").run()
    at.selectbox[0].set_value("cbis-ddsm").run()
    at.text_input[0].set_value(str(jpeg_tree)).run()
    assert not at.exception and not at.error, [e.value for e in at.error]
    assert at.warning[0].value.startswith("13 usable images (of 14 listed)")
    assert "8-bit lossy JPEGs" in at.text[0].value
