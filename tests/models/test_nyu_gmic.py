"""``nyu_gmic``: GMIC as NYU published it, equal to their code on their weight format.

The fixture (tests/fixtures/nyu_gmic, rebuilt by its ``make_fixture.py`` from nyukat/GMIC's own
code) holds their state dict's layout and their outputs for three seeded inputs; the weights are
redrawn here from the seed (tests/nyu_gmic_recipe.py) in their key layout, saved as their ``.p``
files are, and imported with ``python -m hct import-nyu-gmic``.
"""

from __future__ import annotations

import re
from pathlib import Path

import pandas as pd
import pytest
import torch
from PIL import Image
from safetensors.torch import load_file
from torch import nn

from hct.__main__ import main
from hct.data import generate_phantom, load_records, preprocess, read_mammogram
from hct.errors import CheckpointError, ConfigError
from hct.eval import read_predictions
from hct.io import file_sha256
from hct.models import count_parameters, create_model
from hct.models.checkpoints import load_model
from hct.models.nyu_import import convert_nyu_state_dict, import_nyu_gmic
from tests.nyu_gmic_recipe import FIXTURE, MODEL_INDICES, seeded_inputs, seeded_state_dict, their_layout
from tests.paths import FIXTURES


@pytest.fixture(scope="module")
def their_state() -> dict[str, torch.Tensor]:
    return seeded_state_dict(their_layout())


@pytest.fixture(scope="module")
def their_file(their_state, tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("nyu") / "sample_model_1.p"
    torch.save(their_state, path)
    return path


def run_import(source: Path, out: Path, index: int = 1, *extra: str) -> int:
    return main(["import-nyu-gmic", str(source), "--index", str(index), "--out", str(out), *extra])


def test_parameter_counts_match_their_model():
    """Their GMIC with run_model.py's parameters: 14,110,322 parameters, 2,800,048 in ds_net and
    left_postprocess_net (counted on their code when the fixture was made)."""
    model = create_model("nyu_gmic")
    assert count_parameters(model) == 14_110_322
    assert count_parameters(model.global_network) + count_parameters(model.saliency_conv) == 2_800_048


def test_their_layout_maps_onto_every_key(their_state):
    converted = convert_nyu_state_dict(their_state)
    ours = create_model("nyu_gmic").state_dict()
    assert set(converted) == set(ours)
    assert all(converted[key].shape == value.shape for key, value in ours.items())


@pytest.mark.slow
def test_imported_weights_reproduce_their_outputs(their_file, tmp_path):
    reference = load_file(FIXTURE / "outputs.safetensors")
    inputs = seeded_inputs()
    for i, index in enumerate(MODEL_INDICES):
        out = tmp_path / f"nyu_gmic_{index}"
        assert run_import(their_file, out, index) == 0
        model, card = load_model(out)
        with torch.no_grad():
            result = model(inputs[i : i + 1])
        assert torch.equal(result.crop_positions[0], reference["crop_positions"][i])
        for name in ("saliency", "attention", "y_global", "y_local", "y_fusion"):
            assert (getattr(result, name)[0] - reference[name][i]).abs().max().item() < 1e-5, name
        assert card.training["model_index"] == index and card.training["source_sha256"] == file_sha256(their_file)
        assert card.input_size == (2944, 1920) and "AGPL" in card.training["licence"]
    assert not torch.equal(reference["y_global"][0], reference["y_global"][2])  # percent_t 0.02 vs 0.1 tell apart


def test_unused_key_of_some_published_files_is_dropped(their_state, tmp_path):
    source = tmp_path / "with_extra.p"
    torch.save({**their_state, "shared_rep_filter.weight": torch.zeros(256, 256, 4, 4)}, source)
    assert run_import(source, tmp_path / "out", 2) == 0
    model, card = load_model(tmp_path / "out")
    assert card.training["dropped_keys"] == ["shared_rep_filter.weight"] and model.config.percent_t == 0.03


def _hct_official_state() -> dict:
    return load_file(FIXTURES / "official_hct" / "state_dict.fp16.safetensors")


BAD_FILES = {
    "not a state dict": (lambda s: {"epoch": 3, "lr": 0.1}, r"not a state dict of tensors"),
    "a list": (lambda s: [1, 2], r"holds a list, not a state dict"),
    "another variant": (
        lambda s: {k: v for k, v in s.items() if not k.startswith("dn_resnet.layer4")},
        r"missing \d+: local_network\.layer4\.0\.bn1\.bias",
    ),
    "misshaped": (
        lambda s: {**s, "fusion_dnn.weight": torch.zeros(2, 1024)},
        r"misshaped 1: fusion\.weight \(2, 1024\) \(expected \(2, 768\)\)",
    ),
    "HCT official file": (lambda s: _hct_official_state(), r"the official HCT code.*python -m hct import-official"),
}


@pytest.mark.parametrize("case", list(BAD_FILES))
def test_bad_files_get_a_clear_error_and_nothing_is_written(their_state, tmp_path, capsys, case):
    make, message = BAD_FILES[case]
    source = tmp_path / "bad.p"
    torch.save(make(their_state), source)
    assert run_import(source, tmp_path / "out") == 2
    err = capsys.readouterr().err
    assert re.search(message, err) and "Traceback" not in err and len(err.strip().splitlines()) == 1
    assert not list(tmp_path.glob("out*"))


def test_pickled_code_is_refused(tmp_path, capsys):
    source = tmp_path / "whole_model.p"
    torch.save(nn.Linear(2, 2), source)
    assert run_import(source, tmp_path / "out") == 2
    err = capsys.readouterr().err
    assert "needs more than weights" in err and "NYU's GMIC code" in err and not list(tmp_path.glob("out*"))


@pytest.mark.parametrize("index", ["0", "6", "ensemble"])
def test_index_out_of_range(their_file, tmp_path, capsys, index):
    with pytest.raises(SystemExit) as exit_:
        main(["import-nyu-gmic", str(their_file), "--index", index, "--out", str(tmp_path / "out")])
    assert exit_.value.code == 2 and "--index" in capsys.readouterr().err and not list(tmp_path.glob("out*"))
    with pytest.raises(ConfigError, match="--index must be one of"):
        import_nyu_gmic(their_file, int(index) if index.isdigit() else 7, tmp_path / "out")


def test_their_file_given_to_import_official(their_file, tmp_path, capsys):
    code = main(["import-official", str(their_file), "--model", "hct_performer_relu", "--out", str(tmp_path / "o")])
    assert code == 2 and "python -m hct import-nyu-gmic" in capsys.readouterr().err
    assert not list(tmp_path.glob("o.*"))


@pytest.fixture(scope="module")
def small_checkpoint(tmp_path_factory) -> Path:
    """A random nyu_gmic checkpoint at a small input size (the model takes any size; crops stay 256x256)."""
    from hct.data.image.preprocess import preprocessing_info
    from hct.models.checkpoints import save_checkpoint

    torch.manual_seed(1)
    path = tmp_path_factory.mktemp("small") / "nyu_small"
    save_checkpoint(
        create_model("nyu_gmic"),
        path,
        input_size=(384, 256),
        stage="image",
        preprocessing=preprocessing_info("nyu_gmic", clear_background=False),
    )
    return path.with_suffix(".safetensors")


def test_predict_gives_benign_and_malignant_columns(small_checkpoint, tmp_path):
    generate_phantom(3, tmp_path / "phantom", size=(128, 96), seed=3, malignant_fraction=0.5)
    out = tmp_path / "pred.csv"
    assert (
        main(["predict", "--checkpoint", str(small_checkpoint), "--data", str(tmp_path / "phantom"), "--out", str(out)])
        == 0
    )
    table = read_predictions(out)
    raw = pd.read_csv(out)
    assert len(table) == 3 and raw["benign_probability"].between(0, 1).all() and raw["probability"].between(0, 1).all()
    model, _ = load_model(small_checkpoint)
    record = load_records(str(tmp_path / "phantom"))[0]
    pre = preprocess(read_mammogram(record.path), (384, 256), "nyu_gmic")
    with torch.no_grad():
        y = model(pre.tensor[None]).y_fusion[0]
    row = raw.set_index("image_id").loc[record.image_id]
    assert abs(row["probability"] - float(y[1])) < 1e-5 and abs(row["benign_probability"] - float(y[0])) < 1e-5


@pytest.mark.parametrize("method", ["gradcam", "saliency", "integrated_gradients"])
def test_explain_targets_malignant_y_fusion(small_checkpoint, tmp_path, capsys, method):
    pixels = torch.zeros(300, 200, dtype=torch.uint8)
    pixels[40:260, :120] = 180
    Image.fromarray(pixels.numpy()).save(tmp_path / "0_L-CC.png")
    assert (
        main(
            [
                "explain",
                "--model",
                str(small_checkpoint),
                "--image",
                str(tmp_path / "0_L-CC.png"),
                "--method",
                method,
                "--size",
                "384x256",
                "--out",
                str(tmp_path / "x"),
            ]
        )
        == 0
    )
    probability = float(re.search(r"P\(malignant\) = ([0-9.]+)", capsys.readouterr().out)[1])
    model, _ = load_model(small_checkpoint)
    pre = preprocess(read_mammogram(tmp_path / "0_L-CC.png"), (384, 256), "nyu_gmic")
    with torch.no_grad():
        assert abs(probability - float(model(pre.tensor[None]).y_fusion[0, 1])) < 1e-4
    assert (tmp_path / "x" / f"0_L-CC_nyu_gmic-nyu_small_{method}.png").is_file()


@pytest.mark.slow
def test_ensemble_of_the_five_is_their_mean(their_file, tmp_path, monkeypatch, capsys):
    import hct.models.checkpoints

    monkeypatch.setattr(hct.models.checkpoints, "CHECKPOINT_DIR", tmp_path)
    for index in (1, 2, 3, 5):
        assert run_import(their_file, tmp_path / f"nyu_gmic_{index}", index) == 0
    with pytest.raises(CheckpointError, match=r"model\(s\) \[4\] are missing"):
        load_model("nyu_gmic_ensemble")
    assert run_import(their_file, tmp_path / "nyu_gmic_4", 4) == 0
    ensemble, card = load_model("nyu_gmic_ensemble")
    x = seeded_inputs(1)[:, :, :768, :512]
    with torch.no_grad():
        result = ensemble(x)
        singles = [load_model(tmp_path / f"nyu_gmic_{i}")[0](x) for i in range(1, 6)]
    for name in ("y_global", "y_local", "y_fusion"):
        expected = torch.stack([getattr(s, name) for s in singles]).mean(dim=0)
        assert (getattr(result, name) - expected).abs().max() < 1e-6
    assert not torch.equal(singles[0].y_global, singles[4].y_global)  # percent_t 0.02 and 0.1
    assert len(card.training["ensemble_of"]) == 5 and card.input_size == (2944, 1920)


def test_localize_takes_it_in_its_own_preprocessing(small_checkpoint, tmp_path):
    from hct.explain.localization import localize

    records = generate_phantom(4, tmp_path / "ph", size=(128, 96), malignant_fraction=1.0, benign_fraction=0.0)
    model, _ = load_model(small_checkpoint)
    rows = localize({"nyu": model, "gmic": create_model("gmic").eval()}, records, ["saliency"], (384, 256))
    assert set(rows["model"]) == {"nyu", "gmic"} and len(rows) == 2 * len(rows["image_id"].unique())
    assert rows["energy"].dropna().between(0, 1).all()  # NaN: a map without positive mass
