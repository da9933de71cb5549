"""Public data sets exactly as downloaded (CBIS-DDSM in both TCIA folder modes, the VinDr-Mammo release,
CMMD, OPTIMAM images): the DICOM index, the adapters, ``data check``, and ``predict``/``eval``/``train``
on the manifest it writes."""

import json
import math
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from hct.__main__ import main
from hct.data import (
    check_data,
    complete_splits,
    index_dicoms,
    make_record,
    read_mammogram,
    read_manifest,
    scan_cbis_ddsm,
    scan_cmmd,
    scan_vindr_mammo,
    write_checked_manifest,
)
from hct.data.sets import dicom_index
from hct.data.sets.dicom_index import INDEX_NAME
from hct.errors import ComputationCancelled, ConfigError
from tests import public_trees as trees
from tests.paths import REPO

BOX = trees.mask_box(1)


@pytest.fixture(scope="module", params=["descriptive", "uids"])
def cbis(request, tmp_path_factory):
    root = tmp_path_factory.mktemp(f"cbis-{request.param}")
    trees.cbis_ddsm_tree(root, request.param)
    return root


def by_id(records):
    return {r.image_id: r for r in records}


def test_cbis_ddsm_records_from_either_tcia_layout(cbis):
    csvs = sorted(cbis.glob("*.csv"))
    report = scan_cbis_ddsm(csvs, cbis / "CBIS-DDSM")
    records = by_id(report.records)
    assert len(records) == 13 and report.listed == 14 and report.missing == ("Mass-Test_P_00018_LEFT_CC",)
    left_cc = records["Mass-Test_P_00016_LEFT_CC"]
    assert (left_cc.label, left_cc.laterality, left_cc.view, left_cc.split) == (1, "L", "CC", "test")
    assert left_cc.patient_id == "P_00016"
    assert left_cc.finding_boxes == (BOX,) and left_cc.finding_size == pytest.approx(math.sqrt(16 * 20))
    assert read_mammogram(left_cc.path).pixels.shape == trees.SHAPE
    mask = read_mammogram(left_cc.finding_masks[0]).pixels  # the mask, whichever of 1-1/1-2 it was saved as
    assert set(mask.ravel().tolist()) == {0.0, 255.0} and mask[BOX[0], BOX[1]] == 255
    # the swapped row: the CSV calls the mask the cropped image; the mask is still found by content
    swapped = records["Mass-Test_P_00016_LEFT_MLO"]
    assert swapped.finding_boxes == (BOX,) and swapped.finding_types == ("mass", "architectural_distortion")
    assert any("Mass-Test_P_00016_LEFT_MLO_1" in note for note in report.notes)
    benign = records["Mass-Test_P_00017_RIGHT_CC"]  # two abnormalities, two masks (one path ends in a newline)
    assert benign.label == 0 and benign.finding_types == ("mass", "focal_asymmetry")
    assert benign.finding_boxes == (BOX, trees.mask_box(2)) and len(benign.finding_masks) == 2
    # a mask of another shape than its image is no mask: no box, and the report says so
    assert records["Calc-Test_P_00038_RIGHT_MLO"].finding_boxes == ()
    assert any("Calc-Test_P_00038_RIGHT_MLO_1" in note for note in report.notes)
    assert records["Mass-Training_P_00001_LEFT_CC"].split == "train"
    # one mammogram in the mass training CSV (a benign mass) and the calc test CSV (a malignant
    # calcification), as two files with other UIDs: one record, the official test split, both findings' masks
    twice = records["Calc-Test_P_00004_LEFT_CC"]
    assert "Mass-Training_P_00004_LEFT_CC" not in records
    assert (twice.label, twice.split, twice.finding_types) == (1, "test", ("calcifications",))
    assert twice.finding_boxes == (BOX,) and len(twice.finding_masks) == 1
    assert any(
        "in both the mass and the calc CSVs" in n and "Calc-Test_P_00004_LEFT_CC = Mass-Training_P_00004_LEFT_CC" in n
        for n in report.notes
    )
    assert any(
        n.startswith("patients with images in both the training and the test CSVs") and "P_00004" in n
        for n in report.notes
    )


def test_cbis_ddsm_from_any_folder_above_the_images(cbis):
    csvs = sorted(cbis.glob("*.csv"))
    below = by_id(scan_cbis_ddsm(csvs, cbis / "CBIS-DDSM").records)
    above = by_id(scan_cbis_ddsm([str(c) for c in csvs], cbis).records)
    assert {k: (r.label, r.finding_boxes) for k, r in below.items()} == {
        k: (r.label, r.finding_boxes) for k, r in above.items()
    }


def test_cbis_ddsm_after_a_reorganisation(cbis, tmp_path):
    flat = tmp_path / "flat"  # every file renamed and thrown into one folder: the headers still match
    for i, file in enumerate(sorted((cbis / "CBIS-DDSM").rglob("*.dcm"))):
        flat.mkdir(exist_ok=True)
        shutil.copy(file, flat / f"image{i:03d}.dcm")
    records = by_id(scan_cbis_ddsm(sorted(cbis.glob("*.csv")), flat).records)
    assert len(records) == 13 and records["Mass-Test_P_00016_LEFT_MLO"].finding_boxes == (BOX,)


def test_cbis_ddsm_nothing_found_and_bad_csv(tmp_path):
    shutil.copy(trees.FIXTURES / "cbis_ddsm" / "calc_case_description_test_set.csv", tmp_path)
    report = check_data(tmp_path, "cbis-ddsm")
    assert not report.usable and len(report.missing) == 3
    (tmp_path / "calc_case_description_test_set.csv").write_text("patient_id,pathology\nP_1,BENIGN\n")
    with pytest.raises(ConfigError, match="CBIS-DDSM table .* lacks the column"):
        check_data(tmp_path, "cbis-ddsm")


@pytest.mark.parametrize("fmt", ["cbis-ddsm", "vindr", "manifest"])
def test_a_table_that_is_missing_or_not_csv_text_is_named(fmt, tmp_path, capsys):
    dicom = trees.write_dicom(tmp_path / "image.dcm", trees.breast("L"))  # a DICOM file given as the table
    source = [str(dicom)] if fmt == "manifest" else [str(tmp_path), "--tables", str(dicom)]
    assert main(["data", "check", *source, "--format", fmt]) == 2
    assert "is not a CSV text file" in capsys.readouterr().err
    source = (
        [str(tmp_path / "gone.csv")] if fmt == "manifest" else [str(tmp_path), "--tables", str(tmp_path / "gone.csv")]
    )
    assert main(["data", "check", *source, "--format", fmt]) == 2
    assert "gone.csv does not exist" in capsys.readouterr().err


def test_a_case_description_saved_by_a_spreadsheet_program_still_reads(cbis, tmp_path):
    """Excel writes UTF-8 CSVs with a byte-order mark before the first column name."""
    csvs = sorted(cbis.glob("*.csv"))
    for csv_path in csvs:
        (tmp_path / csv_path.name).write_bytes(b"\xef\xbb\xbf" + csv_path.read_bytes())
    assert len(scan_cbis_ddsm(sorted(tmp_path.glob("*.csv")), cbis).records) == len(scan_cbis_ddsm(csvs, cbis).records)


def test_index_is_cached_and_refreshed_file_by_file(tmp_path):
    trees.cmmd_tree(tmp_path)
    first = index_dicoms(tmp_path)
    assert first.read == 12 and (tmp_path / INDEX_NAME).is_file()
    assert "D1-0001" not in first.table.drop(columns="path").astype(str).values  # PatientID only as a digest
    again = index_dicoms(tmp_path)
    assert again.read == 0 and again.table.equals(first.table)
    changed = sorted(tmp_path.rglob("1-1.dcm"))[0]
    changed.write_bytes(changed.read_bytes()[:-100])  # pixel data cut short in place
    sorted(tmp_path.rglob("1-2.dcm"))[0].unlink()
    (tmp_path / "CMMD" / "notes.dcm").write_text("not a DICOM file")
    (tmp_path / "CMMD" / "moved.dcm").symlink_to(tmp_path / "elsewhere.dcm")  # a dangling link is no file
    refreshed = index_dicoms(tmp_path)
    assert refreshed.read == 2 and len(refreshed.table) == 12
    errors = dict(zip(refreshed.table["path"], refreshed.table["error"]))
    assert errors["CMMD/notes.dcm"].startswith("not a readable DICOM file")
    assert "truncated" in errors[changed.relative_to(tmp_path).as_posix()]
    (tmp_path / INDEX_NAME).write_text("garbage")  # a broken cache is rebuilt, not trusted
    assert index_dicoms(tmp_path).read == 12


def test_masks_are_told_by_content_in_any_encoding(tmp_path):
    from pydicom.uid import RLELossless

    from hct.data.image.dicom_write import mammogram_dataset, write_dataset

    mask = np.zeros((40, 30), np.uint8)
    mask[5:12, 7:20] = 255
    files = {
        "mask": trees.write_dicom(tmp_path / "mask.dcm", mask),
        "image": trees.write_dicom(tmp_path / "image.dcm", trees.breast("L", shape=(40, 30))),
        "flat": trees.write_dicom(tmp_path / "flat.dcm", np.full((40, 30), 255, np.uint8)),
    }
    inverted = mammogram_dataset(255 - mask, PhotometricInterpretation="MONOCHROME1")  # foreground stored dark
    write_dataset(inverted, files.setdefault("monochrome1", tmp_path / "monochrome1.dcm"))
    compressed = mammogram_dataset(mask.astype(np.uint16) * 4)
    compressed.compress(RLELossless, mask.astype(np.uint16) * 4, encoding_plugin="pylibjpeg")
    write_dataset(compressed, files.setdefault("rle", tmp_path / "rle.dcm"))
    (files.setdefault("corrupt", tmp_path / "corrupt.dcm")).write_bytes(files["mask"].read_bytes()[:400])
    index = index_dicoms(tmp_path)
    boxes = dicom_index.binary_boxes(index, [f.name for f in files.values()])
    found = {name: boxes[file.name] for name, file in files.items()}
    assert found == {
        "mask": (5, 7, 12, 20),
        "monochrome1": (5, 7, 12, 20),
        "rle": (5, 7, 12, 20),
        "image": None,
        "flat": None,
        "corrupt": None,
    }
    assert index_dicoms(tmp_path).table.set_index("path").at["mask.dcm", "binary_box"] == "5 7 12 20"  # kept


def test_a_mask_pass_stopped_midway_keeps_what_it_decoded(tmp_path, monkeypatch):
    for i in range(5):
        mask = np.zeros((40, 30), np.uint8)
        mask[i : i + 10, 5:15] = 255
        trees.write_dicom(tmp_path / f"mask{i}.dcm", mask)
    monkeypatch.setattr(dicom_index, "MASK_BATCH", 2)
    index, paths = index_dicoms(tmp_path), [f"mask{i}.dcm" for i in range(5)]

    def cancel_in_the_second_batch(done: int, total: int) -> None:
        if done > 2:
            raise ComputationCancelled("cancelled")

    with pytest.raises(ComputationCancelled):
        dicom_index.binary_boxes(index, paths, workers=1, progress=cancel_in_the_second_batch)
    decoded = []
    decode = dicom_index.mask_boxes
    monkeypatch.setattr(dicom_index, "mask_boxes", lambda batch: decoded.extend(batch) or decode(batch))
    boxes = dicom_index.binary_boxes(index_dicoms(tmp_path), paths, workers=1)
    assert len(decoded) == 3 and boxes["mask4.dcm"] == (4, 5, 14, 15)  # the first batch came from the cache


def test_two_sessions_indexing_one_folder_at_once_both_succeed(tmp_path):
    """The app's sessions are threads of one process: each writes the cache through a file of its own."""
    from concurrent.futures import ThreadPoolExecutor

    trees.cmmd_tree(tmp_path)
    with ThreadPoolExecutor(2) as pool:
        first, second = pool.map(lambda _: index_dicoms(tmp_path, workers=1), range(2))
    assert first.table.equals(second.table) and index_dicoms(tmp_path).read == 0
    assert not list(tmp_path.rglob(".*.tmp*"))


def test_index_in_parallel_equals_serial_and_lives_in_a_cache_folder(tmp_path, monkeypatch):
    for i in range(70):
        trees.write_dicom(tmp_path / "data" / f"{i:02d}.dcm", trees.breast("L", seed=i), PatientID=f"p{i % 7}")
    serial = index_dicoms(tmp_path / "data", cache_dir=tmp_path / "serial", workers=1)
    pools = []
    pool = dicom_index.concurrent.futures.ProcessPoolExecutor
    monkeypatch.setattr(
        dicom_index.concurrent.futures,
        "ProcessPoolExecutor",
        lambda *args, **kwargs: pools.append(kwargs["mp_context"]) or pool(*args, **kwargs),
    )
    monkeypatch.setattr(dicom_index.threading, "active_count", lambda: 1)  # as in the CLI: forked workers
    parallel = index_dicoms(tmp_path / "data", cache_dir=tmp_path / "parallel", workers=2)
    assert [c.get_start_method() for c in pools] == ["fork"]
    assert parallel.read == 70 and parallel.table.equals(serial.table)
    monkeypatch.setattr(dicom_index.threading, "active_count", lambda: 3)  # as in the app: no fork, few files
    assert index_dicoms(tmp_path / "data", cache_dir=tmp_path / "threaded", workers=2).table.equals(serial.table)
    assert len(pools) == 1
    assert parallel.cache_file.parent == tmp_path / "parallel" and not (tmp_path / "data" / INDEX_NAME).exists()


def test_vindr_mammo_release_layout(tmp_path):
    release = trees.vindr_tree(tmp_path)
    csv = release / "finding_annotations.csv"
    for root in (release, release / "images", tmp_path):  # the release folder, its images, or above
        records = by_id(scan_vindr_mammo(csv, root).records)
        assert len(records) == 11
    table = pd.read_csv(release / "breast-level_annotations.csv")
    first, mlo = records[table.image_id[0]], records[table.image_id[1]]
    assert first.label == 1 and first.split == "train"
    assert first.path.endswith(f"images/{table.study_id[0]}/{table.image_id[0]}.dicom")
    assert first.finding_types == ("mass", "calcifications")  # the BI-RADS 2 mass is left out
    assert first.finding_boxes == ((20, 10, 41, 30),) and mlo.finding_boxes == ((18, 12, 36, 28),)
    right_mlo = records[table.image_id[7]]  # focal asymmetry kept, skin thickening (no type) left out
    assert (right_mlo.label, right_mlo.finding_types, len(right_mlo.finding_boxes)) == (0, ("focal_asymmetry",), 1)
    assert records[table.image_id[9]].finding_types == ()  # global asymmetry is not a focal asymmetry
    assert scan_vindr_mammo(csv, release, malignant_birads=(4, 5)).records[6].label == 1
    report = check_data(release, "vindr")
    assert report.missing == (table.image_id[trees.VINDR_NOT_DOWNLOADED],)


def test_cmmd_labels_each_breast_from_its_classification(tmp_path):
    trees.cmmd_tree(tmp_path)
    records = scan_cmmd(tmp_path / "CMMD_clinicaldata_revision.xlsx", tmp_path).records
    breasts = {(r.patient_id, r.laterality, r.view): (r.label, r.finding_types) for r in records}
    assert len(records) == 12
    assert breasts[("D1-0002", "L", "CC")] == (1, ("mass",))
    assert breasts[("D1-0002", "R", "MLO")] == (0, ("calcifications",))
    assert breasts[("D1-0003", "R", "MLO")] == (1, ("mass", "calcifications"))
    assert breasts[("D2-0001", "R", "CC")] == (-1, ())  # an image of a breast the spreadsheet does not list
    report = check_data(tmp_path, "cmmd")
    assert report.unit == "breasts" and report.listed == 6 and report.missing == ("spreadsheet row 7 (R)",)
    assert any("does not list" in note for note in report.notes)
    assert not any(subject in " ".join(report.lines()) for subject, *_ in trees.CMMD_BREASTS)


def test_cmmd_spreadsheet_errors(tmp_path):
    pd.DataFrame({"ID1": ["D1-0001"], "LeftRight": ["L"], "classification": ["Unknown"]}).to_excel(tmp_path / "c.xlsx")
    with pytest.raises(ConfigError, match="Benign or Malignant"):
        scan_cmmd(tmp_path / "c.xlsx", tmp_path)
    pd.DataFrame({"ID1": ["D1-0001"]}).to_excel(tmp_path / "c.xlsx")
    with pytest.raises(ConfigError, match="lacks CMMD column"):
        scan_cmmd(tmp_path / "c.xlsx", tmp_path)


def test_complete_splits_keeps_test_and_carves_val_by_patient():
    records = [
        make_record(image_id=f"{p}{v}", path="x", patient_id=p, label=0, split="test" if p == "t" else "train")
        for p in "abcdefghijt"
        for v in "12"
    ]
    splits = {(r.patient_id, r.split) for r in complete_splits(records)}
    assert ("t", "test") in splits and sum(s == "val" for _, s in splits) == 1
    assert len({p for p, _ in splits}) == len(splits)  # no patient in two splits
    assert {r.split for r in complete_splits([r.__class__(**{**r.__dict__, "split": ""}) for r in records])} == {
        "train",
        "val",
        "test",
    }


def test_write_checked_manifest_leaves_unlabelled_images_out(tmp_path):
    trees.cmmd_tree(tmp_path)
    path, splits = write_checked_manifest(check_data(tmp_path, "cmmd"), tmp_path / "cmmd.csv")
    records = read_manifest(path)
    assert len(records) == 10 == sum(splits.values()) and all(r.label in (0, 1) for r in records)
    assert all(Path(r.path).is_file() for r in records)
    with pytest.raises(ConfigError, match="exists already"):
        write_checked_manifest(check_data(tmp_path, "cmmd"), path, replace=False)
    with pytest.raises(ConfigError, match="not a .csv path"):
        write_checked_manifest(check_data(tmp_path, "cmmd"), tmp_path / "cmmd.xlsx")


def test_data_check_cli_then_predict_and_eval(cbis, tmp_path, capsys):
    manifest = tmp_path / "cbis_ddsm.csv"
    assert main(["data", "check", str(cbis), "--format", "cbis-ddsm", "--write-manifest", str(manifest)]) == 0
    out = capsys.readouterr().out
    assert "usable images: 13 (of 14 listed)" in out and "missing images: 1, e.g. Mass-Test_P_00018_LEFT_CC" in out
    assert "by finding type: architectural_distortion 2, calcifications 3, focal_asymmetry 1, mass 10" in out
    assert "DICOM headers: 44 files" in out and "by split: test 6, train 7" in out
    assert f"wrote {manifest}: 13 labelled images" in out
    records = read_manifest(manifest)
    assert {r.split for r in records} == {"train", "val", "test"}
    assert by_id(records)["Mass-Test_P_00016_LEFT_CC"].finding_masks[0].endswith(".dcm")
    predictions = tmp_path / "preds.csv"
    assert (
        main(
            [
                "predict",
                "--checkpoint",
                "gmic",
                "--data",
                str(manifest),
                "--split",
                "test",
                "--size",
                "128x96",
                "--device",
                "cpu",
                "--out",
                str(predictions),
            ]
        )
        == 0
    )
    table = pd.read_csv(predictions)
    assert len(table) == 6 and set(table["label"]) == {0, 1} and table["finding_size"].notna().sum() == 5
    assert main(["eval", "--predictions", str(predictions), "--out", str(tmp_path / "eval"), "--n-boot", "20"]) == 0
    assert (tmp_path / "eval" / "auc.csv").is_file()


def test_manifest_paths_hold_from_any_working_folder(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    trees.optimam_images(tmp_path / "images")
    omidb = Path("omidb")
    shutil.copytree(trees.FIXTURES / "omidb" / "data", omidb)
    assert (
        main(
            [
                "data",
                "check",
                "omidb",
                "--format",
                "optimam",
                "--images",
                "images",
                "--write-manifest",
                "out/optimam.csv",
            ]
        )
        == 0
    )  # relative paths, and a manifest in another folder
    assert main(["data", "check", "out/optimam.csv", "--format", "manifest", "--write-manifest", "again/m.csv"]) == 0
    assert all(Path(r.path).is_file() for r in read_manifest("out/optimam.csv") + read_manifest("again/m.csv"))


def test_data_check_cli_exits_non_zero_when_nothing_is_usable(tmp_path, capsys):
    shutil.copy(trees.FIXTURES / "cbis_ddsm" / "calc_case_description_test_set.csv", tmp_path)
    argv = ["data", "check", str(tmp_path), "--format", "cbis-ddsm", "--write-manifest", str(tmp_path / "m.csv")]
    assert main(argv) == 1
    assert "nothing usable was found" in capsys.readouterr().out and not (tmp_path / "m.csv").exists()
    assert main(["data", "check", str(tmp_path / "absent"), "--format", "cmmd"]) == 2
    assert "does not exist" in capsys.readouterr().err


@pytest.mark.parametrize("fmt", ["vindr", "cmmd", "optimam"])
def test_data_check_predict_and_eval_other_formats(fmt, tmp_path, capsys):
    if fmt == "vindr":
        source, extra = trees.vindr_tree(tmp_path), []
    elif fmt == "cmmd":
        source, extra = trees.cmmd_tree(tmp_path).parent, []
    else:
        source, extra = trees.FIXTURES / "omidb" / "data", ["--images", str(trees.optimam_images(tmp_path / "images"))]
    manifest = tmp_path / "manifest.csv"
    assert main(["data", "check", str(source), "--format", fmt, "--write-manifest", str(manifest), *extra]) == 0
    assert "unreadable images: 0" in capsys.readouterr().out
    assert main(["data", "check", str(manifest), "--format", "manifest"]) == 0
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
                "128x96",
                "--device",
                "cpu",
                "--out",
                str(predictions),
            ]
        )
        == 0
    )
    assert len(pd.read_csv(predictions)) == len(read_manifest(manifest))
    assert main(["eval", "--predictions", str(predictions), "--out", str(tmp_path / "eval"), "--n-boot", "20"]) == 0


DATA_SETS = {  # format -> (tree under data/ as the README downloads it, data check arguments, configs in order)
    "cbis-ddsm": (
        lambda data: trees.cbis_ddsm_tree(data, csvs=("mass_case_description_train_set.csv",)),
        ["data"],
        ["cbis_ddsm_patch", "cbis_ddsm_image"],
    ),
    "vindr": (
        trees.vindr_tree,
        ["data/physionet.org/files/vindr-mammo/1.0.0"],
        ["vindr_mammo_patch", "vindr_mammo_image"],
    ),
    "cmmd": (trees.cmmd_tree, ["data"], ["cmmd_image"]),
    "optimam": (
        lambda data: (
            shutil.copytree(trees.FIXTURES / "omidb" / "data", data / "omidb" / "data"),
            trees.optimam_images(data / "omidb" / "images"),
        ),
        ["data/omidb/data", "--images", "data/omidb/images"],
        ["optimam_patch", "optimam_image"],
    ),
}


@pytest.mark.parametrize("fmt", DATA_SETS)
def test_the_readme_recipe_trains_both_stages_on_the_checked_manifest(fmt, tmp_path, monkeypatch, capsys):
    """Each data set's configs as the README uses them, in order (the image stage starts from the patch
    stage's best checkpoint), shrunk to one step on tiny images."""
    tree, check_args, configs = DATA_SETS[fmt]
    monkeypatch.chdir(tmp_path)
    tree(Path("data"))
    first = json.loads((REPO / "configs" / f"{configs[0]}.json").read_text())
    assert main(["data", "check", *check_args, "--format", fmt, "--write-manifest", first["manifest"]]) == 0
    for name in configs:
        config = json.loads((REPO / "configs" / f"{name}.json").read_text())
        data_set, stage = name.rsplit("_", 1)
        assert config["manifest"] == first["manifest"] and (config["stage"], config["out_dir"]) == (
            stage,
            f"runs/{data_set}/{stage}",
        )
        if stage == "image" and len(configs) == 2:
            assert config["init_checkpoint"] == f"{first['out_dir']}/best.safetensors"
        config.update(
            input_size="128x96", patch_size=32, batch_size=4, micro_batch=2, max_steps=1, device="cpu", workers=0
        )
        Path(f"{name}.json").write_text(json.dumps(config))
        capsys.readouterr()
        assert main(["train", "--config", f"{name}.json", "--no-progress"]) == 0
        assert json.loads(capsys.readouterr().out)["steps"] == 1
        assert (Path(config["out_dir"]) / "best.safetensors").is_file()
