"""``python -m hct predict`` and ``eval`` through the real entry point: every table and figure, offline-ready."""

import numpy as np
import pandas as pd
import pytest

from hct.__main__ import main
from hct.eval import read_predictions, write_predictions


def synthetic(model, shift, stage=None, seed=0):
    rng = np.random.default_rng(seed)
    n_pos, n_neg = 40, 80
    labels = np.r_[np.ones(n_pos, int), np.zeros(n_neg, int)]
    types = np.array(["mass", "calcifications", "architectural_distortion", "focal_asymmetry"])
    score = 1 / (1 + np.exp(-(labels * shift + rng.normal(0, 1, labels.size))))
    df = pd.DataFrame(
        {
            "image_id": [f"img{i:03d}" for i in range(labels.size)],
            "patient_id": "",
            "laterality": "L",
            "view": "CC",
            "label": labels,
            "finding_types": np.where(labels == 1, types[np.arange(labels.size) % 4], ""),
            "finding_size": np.where(labels == 1, rng.uniform(50, 450, labels.size), np.nan),
            "probability": score,
            "model": model,
            "checkpoint_sha256": "",
        }
    )
    return df.assign(stage=stage) if stage else df


def test_cli_writes_tables_and_offline_figures(tmp_path, capsys):
    a = write_predictions(synthetic("GMIC", 1.0), tmp_path / "a.csv")
    b = write_predictions(synthetic("HCT", 2.0, seed=1), tmp_path / "b.csv")
    out = tmp_path / "out"
    assert (
        main(
            ["eval", "--predictions", str(a), str(b), "--reference-model", "GMIC", "--out", str(out), "--n-boot", "50"]
        )
        == 0
    )
    assert "Negatives: the 80 images with no finding at all" in capsys.readouterr().out
    for name in (
        "auc.csv",
        "finding_type.csv",
        "finding_size.csv",
        "size_tertiles.csv",
        "plotly.min.js",
        "finding_type.png",
        "finding_size.html",
        "size_tertiles.png",
        "roc.html",
    ):
        assert (out / name).stat().st_size > 0, name
    assert not (out / "table3.csv").exists()
    html = (out / "finding_size.html").read_text()
    assert "plotly.min.js" in html and "cdn.plot.ly" not in html
    sizes = pd.read_csv(out / "finding_size.csv")
    assert len(sizes) == 14 and sizes.loc[sizes["model"] == "HCT", "difference"].notna().all()


def test_cli_table3_with_stages(tmp_path):
    frames = [
        synthetic(m, s, stage, seed=i)
        for i, (m, s) in enumerate([("GMIC", 1.0), ("HCT", 2.0)])
        for stage in ("patch", "image")
    ]
    path = write_predictions(pd.concat(frames, ignore_index=True), tmp_path / "all.csv")
    out = tmp_path / "out"
    assert (
        main(
            [
                "eval",
                "--predictions",
                str(path),
                "--out",
                str(out),
                "--n-boot",
                "30",
                "--params",
                "GMIC=2.80",
                "HCT=1.73",
            ]
        )
        == 0
    )
    table = pd.read_csv(out / "table3.csv").set_index("model")
    assert table.loc["HCT", "params_millions"] == 1.73
    assert table[["patch", "image"]].notna().all().all()
    assert len(pd.read_csv(out / "auc.csv")) == 4


def test_cli_errors_are_reported_not_raised(tmp_path, capsys):
    a = write_predictions(synthetic("GMIC", 1.0), tmp_path / "a.csv")
    b = write_predictions(synthetic("HCT", 2.0).iloc[5:], tmp_path / "b.csv")
    assert main(["eval", "--predictions", str(a), str(b), "--out", str(tmp_path / "o"), "--n-boot", "10"]) == 2
    assert "not run on the same images" in capsys.readouterr().err
    assert main(["eval", "--predictions", str(a), "--out", str(tmp_path / "o"), "--n-boot", "0"]) == 2
    assert "at least 1 resample" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main(["eval", "--predictions", str(a), "--out", str(tmp_path), "--params", "GMIC"])
    assert "expected MODEL=MILLIONS" in capsys.readouterr().err


def test_predict_then_eval_on_a_phantom(tmp_path):
    """`predict` over a labelled phantom data set writes a table that `eval` accepts."""
    from hct.data import generate_phantom
    from hct.models import create_model
    from hct.models.checkpoints import save_checkpoint

    generate_phantom(12, tmp_path / "phantom", size=(128, 96), seed=3, malignant_fraction=0.5)
    save_checkpoint(create_model("gmic"), tmp_path / "gmic", input_size=(128, 96), stage="image")
    out = tmp_path / "pred.csv"
    assert (
        main(
            [
                "predict",
                "--checkpoint",
                str(tmp_path / "gmic.safetensors"),
                "hct_performer_relu",
                "--data",
                str(tmp_path / "phantom"),
                "--size",
                "128x96",
                "--out",
                str(out),
            ]
        )
        == 0
    )
    table = read_predictions(out)
    assert len(table) == 24 and set(table["model"]) == {"gmic", "hct_performer_relu"}
    assert set(table["label"]) == {0, 1}
    params = table.groupby("model")["params_millions"].unique()
    assert list(params["gmic"]) == [2.80005] and list(params["hct_performer_relu"]) == [1.73701]
    sha = table.loc[table["model"] == "gmic", "checkpoint_sha256"].unique()
    assert len(sha) == 1 and len(sha[0]) == 64
    assert main(["eval", "--predictions", str(out), "--n-boot", "50", "--out", str(tmp_path / "eval")]) == 0
    assert (tmp_path / "eval" / "auc.csv").is_file()


def test_predict_preprocesses_as_the_card_says(tmp_path):
    from hct.data import generate_phantom, load_records
    from hct.eval import predict
    from hct.models import create_model
    from hct.models.checkpoints import load_model, save_checkpoint

    generate_phantom(4, tmp_path / "phantom", size=(128, 96), seed=2)
    save_checkpoint(
        create_model("gmic"),
        tmp_path / "gmic",
        input_size=(64, 48),
        stage="image",
        preprocessing={"mode": "acquired", "clear_background": False, "version": 2},
    )
    out = tmp_path / "pred.csv"
    assert (
        main(
            [
                "predict",
                "--checkpoint",
                str(tmp_path / "gmic.safetensors"),
                "--data",
                str(tmp_path / "phantom"),
                "--out",
                str(out),
            ]
        )
        == 0
    )
    model, _ = load_model(tmp_path / "gmic")
    records = load_records(str(tmp_path / "phantom"))
    expected = predict(model, records, size=(64, 48), mode="acquired", clear_background=False)
    np.testing.assert_allclose(read_predictions(out)["probability"], expected["probability"], rtol=1e-5)


def test_predict_rejects_unknown_source(tmp_path, capsys):
    assert (
        main(
            [
                "predict",
                "--checkpoint",
                "gmic",
                "--data",
                str(tmp_path / "nope"),
                "--size",
                "64x64",
                "--out",
                str(tmp_path / "p.csv"),
            ]
        )
        == 2
    )
    assert "is not 'samples', a manifest .csv, a folder or pacs:STUDY_UID" in capsys.readouterr().err
