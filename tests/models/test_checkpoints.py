"""Checkpoints: round trip, model card, and refusal of anything that is not what it claims."""

import json

import pytest
import torch

from hct.errors import CheckpointError
from hct.models import create_model
from hct.models.card import find_checkpoints, read_card
from hct.models.checkpoints import load_model, save_checkpoint


@pytest.fixture()
def saved(tmp_path):
    torch.manual_seed(0)
    model = create_model("hct_performer_relu", first_stage_stride=1).eval()
    card = save_checkpoint(model, tmp_path / "hct", input_size=(128, 96), stage="image", metrics={"test_auc": 0.7})
    return model, card, tmp_path / "hct.safetensors"


def test_round_trip_gives_equal_outputs(saved):
    model, card, path = saved
    loaded, loaded_card = load_model(path)
    assert loaded_card == card and card.overrides == {"first_stage_stride": 1}
    assert card.parameters == 1_737_010 and card.input_size == (128, 96)
    x = torch.randn(2, 1, 128, 96)
    with torch.no_grad():
        torch.testing.assert_close(loaded(x), model(x))
        torch.testing.assert_close(loaded(x), loaded(x), rtol=0, atol=0)


def test_half_precision_storage_casts_back(tmp_path):
    model = create_model("gmic").eval()
    save_checkpoint(model, tmp_path / "g", dtype=torch.float16)
    loaded, card = load_model(tmp_path / "g.json")
    assert card.weights_dtype == "float16"
    assert all(p.dtype == torch.float32 for p in loaded.parameters())
    x = torch.randn(1, 1, 128, 128)
    with torch.no_grad():
        torch.testing.assert_close(loaded(x), model(x), rtol=2e-2, atol=2e-2)


def test_tampered_weights_are_refused(saved):
    _, _, path = saved
    data = bytearray(path.read_bytes())
    data[-10] ^= 0xFF
    path.write_bytes(bytes(data))
    with pytest.raises(CheckpointError, match="does not match its model card"):
        load_model(path)


def test_truncated_weights_are_refused(saved):
    _, _, path = saved
    path.write_bytes(path.read_bytes()[:1000])
    with pytest.raises(CheckpointError, match=str(path.name)):
        load_model(path)


def test_corrupt_file_with_matching_hash_is_refused(saved):
    """Even a card whose sha256 was updated cannot make garbage load."""
    _, _, path = saved
    path.write_bytes(b"not a safetensors file at all")
    card_path = path.with_suffix(".json")
    card = json.loads(card_path.read_text())
    import hashlib

    card["weights_sha256"] = hashlib.sha256(path.read_bytes()).hexdigest()
    card_path.write_text(json.dumps(card))
    with pytest.raises(CheckpointError, match="not a readable safetensors"):
        load_model(path)


def test_other_architecture_is_refused(saved):
    from types import SimpleNamespace

    from hct.train.loop import _build_model

    _, _, path = saved
    config = SimpleNamespace(seed=0, model="gmic", overrides={}, init_checkpoint=str(path))  # what it reads
    with pytest.raises(CheckpointError, match="holds a hct_performer_relu model, not a gmic checkpoint"):
        _build_model(config)
    card_path = path.with_suffix(".json")
    card = json.loads(card_path.read_text())
    card["architecture"], card["overrides"] = "gmic", {}
    card_path.write_text(json.dumps(card))
    with pytest.raises(CheckpointError, match="does not fit architecture gmic"):
        load_model(path)


def test_missing_files_are_named(tmp_path, saved):
    with pytest.raises(CheckpointError, match="absent.safetensors' is neither a registered name .* nor a checkpoint"):
        load_model(tmp_path / "absent.safetensors")
    _, _, path = saved
    card = path.with_suffix(".json").read_bytes()
    path.with_suffix(".json").unlink()
    with pytest.raises(CheckpointError, match="no model card at .*hct.json"):
        load_model(path)
    path.with_suffix(".json").write_bytes(card)
    path.unlink()
    with pytest.raises(CheckpointError, match="weights file .* is missing"):
        load_model(path)


def test_garbage_card_is_refused(saved):
    _, _, path = saved
    path.with_suffix(".json").write_text("{not json")
    with pytest.raises(CheckpointError, match="not valid JSON"):
        read_card(path)


def test_find_and_cli_list(saved, capsys):
    from hct.__main__ import main

    _, _, path = saved
    assert find_checkpoints(path.parent) == [path]
    assert main(["models", "--checkpoints", str(path.parent)]) == 0
    out = capsys.readouterr().out
    assert "hct_performer_relu" in out and "hct.safetensors" in out and "1.737 M" in out


def test_checkpoint_of_the_first_layout_gets_a_clear_error(saved):
    _, _, path = saved
    card_path = path.with_suffix(".json")
    card = json.loads(card_path.read_text())
    card["architecture_version"] = 1
    card_path.write_text(json.dumps(card))
    with pytest.raises(CheckpointError, match="network layout 1.*layout 2"):
        load_model(path)


def test_missing_keys_are_named_never_a_partial_load(saved):
    from safetensors.torch import load_file, save_file

    from hct.io import file_sha256

    _, _, path = saved
    state = load_file(str(path))
    state.pop("stages.3.0.attention.attn.to_q.bias")
    save_file(state, str(path))
    card = json.loads(path.with_suffix(".json").read_text())
    card["weights_sha256"] = file_sha256(path)
    path.with_suffix(".json").write_text(json.dumps(card))
    with pytest.raises(CheckpointError, match="missing .*to_q.bias"):
        load_model(path)


def test_load_model_takes_a_name_or_a_checkpoint(saved):
    model, card = load_model("gmic")
    assert card is None and model.name == "gmic" and not model.training
    _, saved_card, path = saved
    loaded, card = load_model(str(path))
    assert card == saved_card and loaded.pretrained_cfg["weights_sha256"] == card.weights_sha256
    with pytest.raises(CheckpointError, match="neither a registered name"):
        load_model("resnet50")


def test_load_model_initialises_a_name_from_seed_zero_and_leaves_the_generator_alone():
    torch.manual_seed(123)
    expected_next = torch.rand(1)
    torch.manual_seed(123)
    first, _ = load_model("gmic")
    second, _ = load_model("gmic")
    assert torch.rand(1) == expected_next  # the caller's random stream is untouched
    for a, b in zip(first.state_dict().values(), second.state_dict().values()):
        assert torch.equal(a, b)


def test_load_model_reads_the_card_once(saved, monkeypatch):
    import hct.models.checkpoints as checkpoints

    reads = []
    read_card = checkpoints.read_card
    monkeypatch.setattr(checkpoints, "read_card", lambda path: reads.append(path) or read_card(path))
    _, _, path = saved
    load_model(path)
    assert len(reads) == 1


def test_create_model_builds_and_never_loads(saved):
    from hct.errors import UnknownModelError

    _, _, path = saved
    with pytest.raises(UnknownModelError, match="unknown override 'checkpoint_path'"):
        create_model("hct_performer_relu", checkpoint_path=str(path))
    with pytest.raises(UnknownModelError, match="unknown override 'pretrained'"):
        create_model("hct_performer_relu", pretrained=True)
