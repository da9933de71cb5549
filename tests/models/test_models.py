"""The model zoo: parameter counts from the paper's Table 3, shapes, gradients, determinism."""

import pytest
import torch

from hct.errors import UnknownModelError
from hct.models import MODEL_SPECS, count_parameters, create_model, list_architectures, list_models

PAPER_PARAMS_M = {
    "gmic": 2.80,
    "def_gmic": 2.89,
    "hct_performer_relu": 1.73,
    "hct_performer_softmax": 1.73,
    "hct_nystrom": 1.73,
}
# The official code's exact counts (nyukat/GMIC modules.py; whiterabbit-ai/hct hct_base.py, q/k/v with bias).
OFFICIAL_PARAMS = {"gmic": 2_800_050, "hct_performer_relu": 1_737_010, "hct_performer_softmax": 1_737_010}


@pytest.fixture(scope="module", params=list_models())
def model(request):
    torch.manual_seed(0)
    return create_model(request.param)


def test_registry_lists_the_paper_models():
    assert sorted(list_models()) == sorted(PAPER_PARAMS_M)


def test_parameter_counts_match_table_3(model):
    assert count_parameters(model) / 1e6 == pytest.approx(PAPER_PARAMS_M[model.name], abs=0.03)
    if model.name in OFFICIAL_PARAMS:
        assert count_parameters(model) == OFFICIAL_PARAMS[model.name]


def test_stem_pools_without_padding_as_the_official_code():
    """At 3328x2560 the map after the stem's max-pool is 831x639 (GMIC's and HCT's first_pool_padding=0)."""
    model = create_model("gmic").eval()
    with torch.no_grad():
        assert model.forward_stem(torch.zeros(1, 1, 3328, 2560)).shape[-2:] == (831, 639)


def test_every_stage_opens_with_a_shortcut_convolution(model):
    assert all(stage[0].downsample is not None and stage[1].downsample is None for stage in model.stages)


@pytest.mark.parametrize("size", [(128, 128), (192, 160), (200, 136)])
def test_output_and_feature_shapes(model, size):
    model.eval()
    x = torch.randn(2, 1, *size)
    with torch.no_grad():
        logits, feats = model(x), model.forward_features(x)
    assert logits.shape == (2, 2)
    stride = 64 if model.name in ("gmic", "def_gmic") else 128
    assert model.output_stride == stride
    assert feats.shape == (2, 256, -(-size[0] // stride), -(-size[1] // stride))


def test_batch_of_one_and_odd_size(model):
    model.eval()
    with torch.no_grad():
        assert model(torch.randn(1, 1, 97, 131)).shape == (1, 2)


def test_gradients_reach_the_input(model):
    model.train()
    x = torch.randn(2, 1, 128, 128, requires_grad=True)
    model(x).sum().backward()
    assert x.grad is not None and x.grad.abs().sum() > 0
    assert all(p.grad is not None for p in model.parameters() if p.requires_grad)


def test_eval_mode_is_deterministic_and_batch_independent(model):
    model.eval()
    x = torch.randn(3, 1, 128, 128)
    with torch.no_grad():
        batched = model(x)
        again = model(x)
        single = torch.cat([model(x[i : i + 1]) for i in range(3)])
    assert torch.equal(batched, again)
    torch.testing.assert_close(batched, single, rtol=1e-4, atol=1e-5)


def test_overrides():
    m = create_model(
        "hct_performer_relu", num_classes=3, in_chans=2, first_stage_stride=1, num_ac_stages=1, drop_rate=0.2
    ).eval()
    assert len(m.attention_layers()) == 2  # one AC stage of two blocks
    assert m.output_stride == 64
    assert m(torch.randn(1, 2, 64, 64)).shape == (1, 3)
    assert len(create_model("def_gmic", num_deform_stages=0).state_dict()) == len(create_model("gmic").state_dict())
    assert create_model("gmic").attention_layers() == {}
    with pytest.raises(UnknownModelError, match="unknown override"):
        create_model("gmic", depth=3)
    with pytest.raises(UnknownModelError, match="unknown model 'resnet50'; choose one of .*'gmic'"):
        create_model("resnet50")


def test_hct_exposes_its_attention_in_the_last_two_stages():
    m = create_model("hct_performer_softmax")
    names = list(m.attention_layers())
    assert len(names) == 4 and all(n.startswith(("stages.3", "stages.4")) for n in names)


def test_performer_projection_is_a_saved_buffer():
    m = create_model("hct_performer_relu")
    keys = [k for k in m.state_dict() if k.endswith("projection_matrix")]
    assert len(keys) == 4
    assert all(not k.endswith("projection_matrix") for k, _ in m.named_parameters())


def test_timm_interface_features_then_head(model):
    model.eval()
    x = torch.randn(1, 1, 128, 128)
    with torch.no_grad():
        features = model.forward_features(x)
        torch.testing.assert_close(model.forward_head(features), model(x))
        assert model.forward_head(features, pre_logits=True).shape == (1, 256)


def test_the_shipped_checkpoint_loads_with_its_card():
    from hct.models.card import CHECKPOINT_DIR
    from hct.models.checkpoints import load_model

    shipped = str(CHECKPOINT_DIR / "hct_performer_relu.safetensors")
    model, card = load_model(shipped)
    cfg = model.pretrained_cfg
    assert cfg["pretrained"] and cfg["file"] == shipped
    assert cfg["input_size"] == (1664, 1280) and len(cfg["weights_sha256"]) == 64
    assert "test_auc" in cfg and cfg["training_data"]
    assert create_model("gmic").pretrained_cfg["pretrained"] is False


def test_one_spec_per_model_with_name_and_colour():
    assert list(MODEL_SPECS) == list_architectures() == [*list_models(), "nyu_gmic"]
    assert MODEL_SPECS["gmic"].colour != MODEL_SPECS["hct_performer_relu"].colour
    assert MODEL_SPECS["def_gmic"].display_name == "Def-GMIC"
