"""Data roots: a path typed into the app is read only under them (absolute paths, '..', symlinks,
manifest rows), with one message whether or not the path exists; HCT_DATA_ROOTS extends them."""

import dataclasses
import os
from pathlib import Path

import pytest

from hct.data import check_data, generate_phantom, load_records, read_manifest, write_manifest
from hct.data.sets.roots import REPOSITORY, ROOTS_ENV, OutsideDataRoots, confine, data_roots
from hct.data.sets.samples import samples_folder


@pytest.fixture()
def root(tmp_path):
    """A data root holding a small phantom, and a folder beside it that is not a root."""
    inside, outside = tmp_path / "root", tmp_path / "outside"
    generate_phantom(4, inside / "phantom", size=(96, 64))
    outside.mkdir()
    (outside / "secret.csv").write_text("image_id,path\n")
    return inside, outside


def message(err: pytest.ExceptionInfo, path) -> str:
    return str(err.value).replace(str(path), "<path>")


def test_the_defaults_are_the_repository_folders_and_the_samples(monkeypatch, tmp_path):
    monkeypatch.delenv(ROOTS_ENV, raising=False)
    assert data_roots() == tuple(
        Path(os.path.realpath(p))
        for p in (REPOSITORY / "data", REPOSITORY / "runs", REPOSITORY / "checkpoints", samples_folder())
    )
    monkeypatch.setenv(ROOTS_ENV, f"{tmp_path}{os.pathsep}{tmp_path / 'b'}")
    assert data_roots()[-2:] == (tmp_path.resolve(), (tmp_path / "b").resolve())


def test_a_path_under_a_root_is_resolved(root):
    inside, _ = root
    assert confine(inside / "phantom" / "manifest.csv", [inside]) == (inside / "phantom" / "manifest.csv").resolve()
    assert confine(inside / "phantom" / ".." / "phantom", [inside]) == (inside / "phantom").resolve()
    assert confine("data/phantom/manifest.csv") == Path(os.path.realpath(REPOSITORY / "data/phantom/manifest.csv"))


def test_absolute_paths_outside_are_refused_alike_whether_or_not_they_exist(root):
    inside, outside = root
    with pytest.raises(OutsideDataRoots) as present:
        confine(outside / "secret.csv", [inside])
    with pytest.raises(OutsideDataRoots) as absent:
        confine(outside / "nothing.csv", [inside])
    assert message(present, outside / "secret.csv") == message(absent, outside / "nothing.csv")
    assert ROOTS_ENV in str(present.value)
    for text in ("/etc/passwd", "/", "", "\0"):
        with pytest.raises(OutsideDataRoots):
            confine(text, [inside])


def test_dot_dot_cannot_climb_out(root):
    inside, outside = root
    with pytest.raises(OutsideDataRoots):
        confine(f"{inside}/phantom/../../outside/secret.csv", [inside])
    with pytest.raises(OutsideDataRoots):
        confine("data/../../../../etc/passwd")


def test_symlinks_are_followed_before_the_check(root):
    inside, outside = root
    (inside / "link").symlink_to(outside)
    (inside / "file-link.csv").symlink_to(outside / "secret.csv")
    for path in (inside / "link" / "secret.csv", inside / "file-link.csv"):
        with pytest.raises(OutsideDataRoots):
            confine(path, [inside])
    assert confine(inside / "link" / "secret.csv", [inside, outside]) == (outside / "secret.csv").resolve()


def test_a_manifest_row_outside_the_roots_refuses_the_manifest_before_any_file_is_read(root):
    inside, outside = root
    records = read_manifest(inside / "phantom" / "manifest.csv")
    for target in (outside / "secret.csv", outside / "absent.dcm"):  # existing or not: the same message
        rows = [*records[:2], dataclasses.replace(records[2], path=str(target))]
        write_manifest(rows, inside / "mixed.csv")
        with pytest.raises(OutsideDataRoots) as refused:
            check_data(inside / "mixed.csv", "manifest", roots=[inside])
        assert f"image {records[2].image_id!r}" in str(refused.value) and ROOTS_ENV in str(refused.value)
        assert str(target) not in str(refused.value)
        with pytest.raises(OutsideDataRoots):
            load_records(inside / "mixed.csv", roots=[inside])
    assert len(check_data(inside / "phantom", "manifest", roots=[inside]).records) == 4
    assert len(load_records(inside / "phantom", roots=[inside])) == 4


def test_a_data_set_folder_outside_or_its_tables_are_refused(root):
    inside, outside = root
    with pytest.raises(OutsideDataRoots):
        check_data(outside, "cmmd", roots=[inside])
    (inside / "cmmd").mkdir()
    (inside / "cmmd" / "CMMD_clinicaldata_revision.xlsx").symlink_to(outside / "secret.csv")
    with pytest.raises(OutsideDataRoots):
        check_data(inside / "cmmd", "cmmd", roots=[inside])


def test_the_command_line_is_not_confined(root):
    _, outside = root
    generate_phantom(4, outside / "phantom", size=(96, 64))
    assert len(load_records(outside / "phantom")) == 4
    assert len(check_data(outside / "phantom", "manifest").records) == 4
