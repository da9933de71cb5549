"""CMMD's clinical table given as CSV (comma or semicolon separated, as some public code saves it) reads like the XLSX."""

from __future__ import annotations

import pandas as pd
import pytest

from hct.data import check_data, scan_cmmd
from hct.errors import ConfigError
from tests import public_trees as trees


def _labels(records):
    return sorted((r.patient_id, r.laterality, r.view, r.label, r.finding_types) for r in records)


@pytest.mark.parametrize("sep", [",", ";"])
def test_a_csv_clinical_table_reads_like_the_spreadsheet(tmp_path, sep):
    trees.cmmd_tree(tmp_path)
    xlsx = tmp_path / "CMMD_clinicaldata_revision.xlsx"
    expected = _labels(scan_cmmd(xlsx, tmp_path).records)
    table = pd.read_excel(xlsx, dtype=str)
    table.to_csv(tmp_path / "CMMD_clinicaldata_revision.csv", sep=sep, index=False, encoding="utf-8-sig")
    assert _labels(scan_cmmd(tmp_path / "CMMD_clinicaldata_revision.csv", tmp_path).records) == expected
    xlsx.unlink()  # data check finds the CSV when there is no spreadsheet
    report = check_data(tmp_path, "cmmd")
    assert _labels(report.records) == expected and report.listed == 6


def test_a_csv_without_the_columns_names_them(tmp_path):
    (tmp_path / "c.csv").write_text("ID1;Side;classification\nD1-0001;L;Benign\n")
    with pytest.raises(ConfigError, match=r"lacks CMMD column\(s\) \['LeftRight'\]"):
        scan_cmmd(tmp_path / "c.csv", tmp_path)
