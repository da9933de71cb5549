"""Phantom generator, preprocessing round trips and its disk cache, splits and the data CLI."""

import filecmp

import numpy as np
import pytest
import torch

from hct.__main__ import main
from hct.data import (
    assign_splits,
    breast_mask,
    generate_phantom,
    infer_laterality,
    load_preprocessed,
    make_record,
    preprocess,
    read_mammogram,
    read_manifest,
)
from hct.data.image.preprocess import crop_box

SIZE = (256, 192)


@pytest.fixture(scope="module")
def phantom(tmp_path_factory):
    out = tmp_path_factory.mktemp("phantom")
    return out, generate_phantom(24, out, size=SIZE, seed=7, malignant_fraction=0.5)


def test_phantom_is_deterministic_by_seed(tmp_path):
    records = generate_phantom(8, tmp_path / "first", size=SIZE, seed=7, malignant_fraction=0.5)
    again = generate_phantom(8, tmp_path / "a", size=SIZE, seed=7, malignant_fraction=0.5)
    other = generate_phantom(8, tmp_path / "b", size=SIZE, seed=8, malignant_fraction=0.5)
    for first, second in zip(records, again):
        assert (first.image_id, first.label, first.finding_boxes) == (
            second.image_id,
            second.label,
            second.finding_boxes,
        )
        assert filecmp.cmp(first.path, second.path, shallow=False)
    assert not all(filecmp.cmp(a.path, b.path, shallow=False) for a, b in zip(again, other))


def test_phantom_dicoms_carry_tags_that_match_the_image(phantom):
    _, records = phantom
    for record in records[:8]:
        image = read_mammogram(record.path)
        meta = image.meta
        assert (meta.laterality, meta.view, meta.laterality_from) == (record.laterality, record.view, "tags")
        assert meta.photometric == "MONOCHROME2" and meta.bit_depth == 12 and image.pixels.shape == SIZE
        assert image.pixels.max() <= 4095
        assert infer_laterality(image.pixels) == record.laterality


def test_phantom_records_manifest_and_findings(phantom):
    out, records = phantom
    assert read_manifest(out / "manifest.csv") == records
    assert {r.laterality + r.view for r in records} == {"LCC", "LMLO", "RCC", "RMLO"}
    malignant = [r for r in records if r.label == 1]
    assert 0 < len(malignant) < len(records)
    assert all(r.finding_boxes and r.finding_types for r in malignant)
    for record in malignant:  # the finding sits inside the breast
        mask = breast_mask(read_mammogram(record.path).pixels)
        r0, c0, r1, c1 = record.finding_boxes[0]
        assert mask[(r0 + r1) // 2, (c0 + c1) // 2]
        assert 25 * SIZE[0] / 1664 * 0.5 <= record.finding_size <= 450 * SIZE[0] / 1664 * 1.5
    by_breast = {}
    for record in records:  # a breast's finding shows in both of its views
        by_breast.setdefault((record.patient_id, record.laterality), set()).add(record.finding_types)
    assert all(len(types) == 1 for types in by_breast.values())


def test_preprocess_round_trips_boxes_and_heatmaps(phantom):
    _, records = phantom
    right = next(r for r in records if r.laterality == "R" and r.finding_boxes)
    left = next(r for r in records if r.laterality == "L")
    size = (128, 96)
    prepared = preprocess(read_mammogram(right.path), size=size)
    assert prepared.flipped and not preprocess(read_mammogram(left.path), size=size).flipped
    assert prepared.tensor.shape == (1, *size) and prepared.tensor.dtype == torch.float32
    assert abs(float(prepared.tensor.mean())) < 1e-4 and abs(float(prepared.tensor.std()) - 1) < 1e-3
    assert prepared.mask[:, :10].mean() > prepared.mask[:, -10:].mean()  # chest wall on the left
    box = right.finding_boxes[0]
    model_box = prepared.to_model(box)
    back = prepared.to_original_box(model_box)
    assert all(abs(a - b) <= 1 for a, b in zip(back, box))
    heatmap = np.zeros(size, dtype=np.float32)
    m0, n0, m1, n1 = (int(round(v)) for v in model_box)
    heatmap[m0:m1, n0:n1] = 1
    restored = prepared.to_original(heatmap)
    assert restored.shape == SIZE
    rows, cols = np.nonzero(restored > 0.5)
    r0, c0, r1, c1 = box
    tolerance = 2 / min(prepared.scale) + 1
    assert abs(rows.min() - r0) <= tolerance and abs(rows.max() + 1 - r1) <= tolerance
    assert abs(cols.min() - c0) <= tolerance and abs(cols.max() + 1 - c1) <= tolerance


def test_crop_box_grows_to_aspect_away_from_chest_wall():
    mask = np.zeros((100, 100), dtype=bool)
    mask[20:80, 0:30] = True
    assert crop_box(mask, (200, 100)) == (20, 0, 80, 30)
    assert crop_box(mask, (60, 60)) == (20, 0, 80, 60)


def test_splits_are_patient_level_and_about_80_10_10():
    records = [make_record(image_id=f"{p}-{v}", path="x", patient_id=f"P{p}") for p in range(200) for v in range(4)]
    split = assign_splits(records, seed=3)
    patients = {s: {r.patient_id for r in split if r.split == s} for s in ("train", "val", "test")}
    assert not (patients["train"] & patients["val"]) and not (patients["train"] & patients["test"])
    assert not (patients["val"] & patients["test"])
    assert [len(patients[s]) for s in ("train", "val", "test")] == [160, 20, 20]
    assert split == assign_splits(records, seed=3) and split != assign_splits(records, seed=4)


def test_the_preprocessing_cache_returns_what_preprocessing_does(phantom, tmp_path):
    _, records = phantom
    image_size = (128, 96)
    for record in records[:4]:
        fresh = preprocess(read_mammogram(record.path), size=image_size)
        first = load_preprocessed(record.path, image_size, tmp_path)
        cached = load_preprocessed(record.path, image_size, tmp_path)  # read back from the .npz
        for got in (first, cached):
            torch.testing.assert_close(got.tensor, fresh.tensor)
            assert (got.mask == fresh.mask).all() and got.crop_box == fresh.crop_box
    assert len(list(tmp_path.glob("*.npz"))) == 4 and not list(tmp_path.glob(".*"))


def test_cli_phantom_and_read(tmp_path, capsys):
    assert main(["phantom", "--n", "4", "--out", str(tmp_path), "--size", "128x96", "--workers", "1"]) == 0
    records = read_manifest(tmp_path / "manifest.csv")
    assert len(records) == 4
    assert main(["read", records[0].path]) == 0
    assert '"laterality": "L"' in capsys.readouterr().out
    assert main(["phantom", "--n", "4", "--out", str(tmp_path), "--size", "12"]) == 2


@pytest.mark.slow
def test_phantom_half_resolution_parallel_matches_serial(tmp_path):
    serial = generate_phantom(8, tmp_path / "s", size=(1664, 1280), seed=1, workers=1)
    parallel = generate_phantom(8, tmp_path / "p", size=(1664, 1280), seed=1, workers=2)
    for a, b in zip(serial, parallel):
        assert filecmp.cmp(a.path, b.path, shallow=False) and a.finding_boxes == b.finding_boxes


def test_phantom_dicoms_are_lossless_rle(tmp_path):
    import pydicom
    from pydicom.uid import RLELossless

    records = generate_phantom({"train": 4}, tmp_path / "rle", size=SIZE, seed=7, malignant_fraction=0.5)
    plain = generate_phantom(
        {"train": 4}, tmp_path / "raw", size=SIZE, seed=7, malignant_fraction=0.5, compression="none"
    )
    for compressed, raw in zip(records, plain):
        ds = pydicom.dcmread(compressed.path)
        assert ds.file_meta.TransferSyntaxUID == RLELossless
        np.testing.assert_array_equal(ds.pixel_array, pydicom.dcmread(raw.path).pixel_array)


def test_benchmark_splits_are_sized_for_the_paper_tables():
    """Planned without rendering: >= 100 malignant test images per finding type and below the
    100-pixel size threshold, >= 1,000 test images with no finding, patients in one split only."""
    from hct.data.options import BENCHMARK_SPLITS
    from hct.data.phantom.generate import _plan

    plans = _plan(BENCHMARK_SPLITS, 0, 0.26, 0.15)
    test = [p for p in plans if p.split == "test"]
    assert len(test) == BENCHMARK_SPLITS["test"] == 2000
    malignant = [p for p in test if p.label == 1]
    for kind in ("mass", "calcifications", "architectural_distortion", "focal_asymmetry"):
        assert sum(p.breast.findings[0].kind == kind for p in malignant) >= 100
    assert sum(p.breast.findings[0].size < 90 for p in malignant) >= 100  # margin for the drawn box
    assert sum(not p.breast.findings for p in test) >= 1000
    patients = {}
    for p in plans:
        patients.setdefault(p.patient_id, set()).add(p.split)
    assert all(len(splits) == 1 for splits in patients.values())


def test_focal_asymmetry_is_drawn_in_fatty_breasts_only():
    from hct.data.phantom.generate import _plan

    plans = _plan({"train": 800}, 3, 0.5, 0.0)
    asymmetric = [
        p.breast.density for p in plans if p.breast.findings and p.breast.findings[0].kind == "focal_asymmetry"
    ]
    others = [p.breast.density for p in plans if not p.breast.findings]
    assert asymmetric and max(asymmetric) <= 0.45 and max(others) > 0.9


def test_check_data_and_the_phantom_take_cancel(tmp_path):
    """The same ``progress=``/``cancel=`` pair as the ERF engine: True stops after the work under way."""
    from hct.data import check_data
    from hct.errors import ComputationCancelled

    with pytest.raises(ComputationCancelled, match="the phantom cancelled after 1 of 4"):
        generate_phantom(4, tmp_path / "stopped", size=(96, 64), cancel=lambda: True)
    generate_phantom(4, tmp_path / "full", size=(96, 64))
    seen = []
    with pytest.raises(ComputationCancelled, match="cancelled after"):
        check_data(
            tmp_path / "full",
            "manifest",
            workers=1,
            progress=lambda done, total: seen.append(done),
            cancel=lambda: True,
        )
    assert seen and check_data(tmp_path / "full", "manifest", workers=1, cancel=lambda: False).usable
