"""Exams: grouping, the four-view hanging, study keys of uploads, breast-level scores."""

import pytest

from hct.data import builtin_samples, make_record
from hct.data.image.dicom_write import MAMMOGRAPHY, new_dataset, write_dataset
from hct.data.sets.exams import FOUR_VIEWS, breast_scores, complete_exams, exam_label, study_key


def dicom_header(**tags) -> bytes:
    ds = new_dataset(MAMMOGRAPHY)
    for key, value in tags.items():
        setattr(ds, key, value)
    return write_dataset(ds)


def test_the_samples_hold_two_complete_exams_hung_rcc_lcc_rmlo_lmlo():
    exams = complete_exams(builtin_samples())
    assert sorted(exams) == ["sfm-benign-0", "sfm-malign-0"]
    for views in exams.values():
        assert (
            [(r.laterality, r.view) for r in views]
            == list(FOUR_VIEWS)
            == [("R", "CC"), ("L", "CC"), ("R", "MLO"), ("L", "MLO")]
        )


def test_an_exam_missing_a_view_or_an_id_is_not_complete():
    records = [
        make_record(image_id=f"{lat}{view}", path="x", exam_id="e1", laterality=lat, view=view)
        for lat, view in FOUR_VIEWS[:3]
    ]
    records.append(make_record(image_id="LMLO", path="x", laterality="L", view="MLO"))  # no exam id
    assert complete_exams(records) == {}
    wrapped = [{"rec": r} for r in records[:3]] + [
        {"rec": make_record(image_id="LMLO", path="x", exam_id="e1", laterality="L", view="MLO")}
    ]
    exams = complete_exams(wrapped, record=lambda item: item["rec"])
    assert [item["rec"].image_id for item in exams["e1"]] == ["RCC", "LCC", "RMLO", "LMLO"]


def test_a_study_key_groups_uploads_of_one_study_and_never_holds_the_uid():
    uid = "1.2.826.0.1.3680043.8.498.123456789"
    same = [dicom_header(StudyInstanceUID=uid, ImageLaterality=lat) for lat in "LR"]
    other = dicom_header(StudyInstanceUID=uid + "1")
    keys = [study_key(data) for data in [*same, other]]
    assert keys[0] == keys[1] != keys[2] and all(k.startswith("study:") for k in keys)
    assert all(uid not in k and "3680043" not in k for k in keys)
    assert study_key(dicom_header(Modality="MG")) == "" and study_key(b"not a dicom at all") == ""
    assert exam_label(keys[0], 0) == "DICOM study 1" and exam_label("sfm-benign-0", 3) == "sfm-benign-0"


def test_breast_score_is_the_mean_over_that_breasts_views():
    scores = breast_scores({("R", "CC"): 0.2, ("R", "MLO"): 0.4, ("L", "CC"): 0.9})
    assert scores == {"R": pytest.approx(0.3), "L": pytest.approx(0.9)}
    assert breast_scores({}) == {}
