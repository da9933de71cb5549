"""``python -m hct import-official``: official HCT weights reproduce the official code's logits.

The fixture (tests/fixtures/official_hct, see its README) holds a seeded random state dict of the
official ``HCTBase`` and the logits the official code gave for it.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file
from torch import nn

from hct.__main__ import main
from hct.errors import ConfigError
from hct.io import file_sha256
from hct.models import create_model
from hct.models.checkpoints import load_model
from hct.models.official import import_official
from tests.paths import FIXTURES

FIXTURE = FIXTURES / "official_hct"


@pytest.fixture(scope="module")
def official_state() -> dict[str, torch.Tensor]:
    return {
        k: v.float() if v.is_floating_point() else v
        for k, v in load_file(FIXTURE / "state_dict.fp16.safetensors").items()
    }


@pytest.fixture(scope="module")
def official_file(official_state, tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("official") / "hct_official.pt"
    torch.save(official_state, path)
    return path


def run_import(source: Path, out: Path, *extra: str, model: str = "hct_performer_relu") -> int:
    return main(["import-official", str(source), "--model", model, "--out", str(out), *extra])


def to_official_names(state: dict[str, torch.Tensor], num_ac_stages: int) -> dict[str, torch.Tensor]:
    """A project HCT state dict under the official HCTBase's key names (the inverse of the import)."""
    first_ac, renamed = 5 - num_ac_stages, {}
    for key, value in state.items():
        match = re.match(r"stages\.(\d+)\.(\d+)\.(.+)", key)
        if match:
            stage, block = int(match[1]), match[2]
            rest = match[3].replace("downsample.", "downsample.0.").replace("attention.attn.", "performer_attention.")
            kind, index = ("ac", stage - first_ac) if stage >= first_ac else ("conv", stage)
            key = f"{kind}_stages.layer_list.{index}.{block}.{rest}"
        elif key.startswith("stem."):
            key = "conv_stages.first_conv." + key.removeprefix("stem.")
        renamed[key] = value
    return renamed


@pytest.mark.parametrize("kernel", ["performer_relu", "performer_softmax"])
def test_imported_weights_reproduce_official_logits(official_file, tmp_path, kernel):
    out = tmp_path / f"hct_{kernel}.safetensors"
    assert run_import(official_file, out, model=f"hct_{kernel}") == 0
    model, card = load_model(out)
    reference = load_file(FIXTURE / "logits.safetensors")
    with torch.no_grad():
        logits = model(reference["input"].float())
    assert (logits - reference[f"logits_{kernel}"]).abs().max().item() < 1e-5
    assert card.architecture == f"hct_{kernel}" and card.architecture_version == 2
    assert card.parameters == 1_737_010 and card.overrides == {} and card.preprocessing == {}
    assert file_sha256(official_file) in card.training_data and official_file.name in card.training_data


def test_kernels_give_different_logits():
    """The fixture can tell the kernels apart: a swapped kernel would fail the 1e-5 check."""
    reference = load_file(FIXTURE / "logits.safetensors")
    assert (reference["logits_performer_relu"] - reference["logits_performer_softmax"]).abs().max() > 0.05


def test_inverse_names_match_the_official_layout(official_state):
    assert set(to_official_names(create_model("hct_performer_relu").state_dict(), 2)) == set(official_state)


@pytest.mark.parametrize("num_ac_stages", [1, 3, 4])
def test_number_of_ac_stages_is_read_from_the_keys(tmp_path, num_ac_stages):
    model = create_model("hct_performer_softmax", num_ac_stages=num_ac_stages)
    source = tmp_path / "official.pt"
    torch.save(to_official_names(model.state_dict(), num_ac_stages), source)
    card = import_official(source, "hct_performer_softmax", tmp_path / "imported")
    assert card.overrides == {"num_mixer_stages": num_ac_stages}
    loaded, _ = load_model(tmp_path / "imported")
    assert all(torch.equal(v, loaded.state_dict()[k]) for k, v in model.state_dict().items())


def test_first_stage_stride_is_an_override(official_file, tmp_path):
    assert run_import(official_file, tmp_path / "s1", "--first-stage-stride", "1") == 0
    model, card = load_model(tmp_path / "s1")
    assert card.overrides == {"first_stage_stride": 1} and model.config.first_stage_stride == 1


def test_nested_and_data_parallel_state_dicts_are_unwrapped(official_state, tmp_path):
    source = tmp_path / "nested.pt"
    torch.save({"epoch": 3, "model": {f"module.{k}": v for k, v in official_state.items()}}, source)
    import_official(source, "hct_performer_relu", tmp_path / "nested")
    loaded, _ = load_model(tmp_path / "nested")
    assert torch.equal(loaded.state_dict()["stem.weight"], official_state["conv_stages.first_conv.weight"])


def test_existing_output_needs_overwrite(official_file, tmp_path):
    out = tmp_path / "once.safetensors"
    assert run_import(official_file, out) == 0
    with pytest.raises(ConfigError, match="already exists"):
        import_official(official_file, "hct_performer_relu", out)
    assert run_import(official_file, out, "--overwrite") == 0


def test_only_hct_models_are_accepted(official_file, tmp_path):
    with pytest.raises(ConfigError, match="hct_performer_relu"):
        import_official(official_file, "gmic", tmp_path / "gmic")


def _edited(state: dict, drop: str | None = None, add: dict | None = None) -> dict:
    return {**{k: v for k, v in state.items() if k != drop}, **(add or {})}


BAD_STATES = {
    "another architecture": (lambda s: create_model("gmic").state_dict(), "not a state dict of the official HCT"),
    "no AC stage": (lambda s: {k: v for k, v in s.items() if not k.startswith("ac_")}, "0 AC stages"),
    "three blocks": (lambda s: _edited(s, add={"conv_stages.layer_list.0.2.bn1.weight": torch.ones(16)}), "2 blocks"),
    "missing key": (
        lambda s: _edited(s, drop="ac_stages.layer_list.1.1.performer_attention.to_q.bias"),
        r"missing 1: stages\.4\.1\.attention\.attn\.to_q\.bias",
    ),
    "unexpected key": (
        lambda s: _edited(s, add={"ac_stages.layer_list.0.0.gate.weight": torch.ones(3)}),
        r"unexpected 1: stages\.3\.0\.gate\.weight",
    ),
    "misshaped key": (
        lambda s: _edited(s, add={"ac_stages.layer_list.0.0.performer_attention.to_k.weight": torch.ones(64, 128)}),
        r"misshaped 1: stages\.3\.0\.attention\.attn\.to_k\.weight \(64, 128\) \(expected \(64, 64\)\)",
    ),
    "ambiguous nesting": (lambda s: {"model": s, "state_dict": s}, "several state dicts"),
    "no tensors": (lambda s: {"epoch": 3, "lr": 0.1}, r"not a state dict of tensors.*state_dict\(\)"),
}


@pytest.mark.parametrize("case", list(BAD_STATES))
def test_bad_state_dicts_get_a_clear_error(official_state, tmp_path, capsys, case):
    make, message = BAD_STATES[case]
    source = tmp_path / "bad.pt"
    torch.save(make(official_state), source)
    assert run_import(source, tmp_path / "out") == 2
    assert re.search(message, capsys.readouterr().err)
    assert not (tmp_path / "out.safetensors").exists()


NOT_TORCH_FILES = {
    "missing": (None, "is not a file"),
    "text": (b"conv_stages.first_conv.weight = 1\n", "is not a PyTorch file saved by torch.save"),
    "empty": (b"", "is not a PyTorch file saved by torch.save"),
    "numpy": (b"\x93NUMPY\x01\x00v\x00", "is not a PyTorch file saved by torch.save"),
    "truncated": ("half", "cannot be read as a PyTorch file .*truncated"),
}


@pytest.mark.parametrize("case", list(NOT_TORCH_FILES))
def test_files_that_are_not_torch_files(official_file, tmp_path, capsys, case):
    content, message = NOT_TORCH_FILES[case]
    source = tmp_path / "weights.pt"
    if content == "half":
        content = official_file.read_bytes()[: official_file.stat().st_size // 2]
    if content is not None:
        source.write_bytes(content)
    assert run_import(source, tmp_path / "out") == 2
    assert re.search(message, capsys.readouterr().err)


def test_pickled_objects_are_never_loaded(tmp_path, capsys):
    source = tmp_path / "whole_model.pt"
    torch.save(nn.Linear(2, 2), source)
    assert run_import(source, tmp_path / "out") == 2
    err = capsys.readouterr().err
    assert "needs more than weights" in err and "torch.nn.modules.linear.Linear" in err
    assert "torch.save(model.state_dict()" in err
