"""A model's identity (ModelRef): made once where the model is loaded, carried by the results that name it."""

import dataclasses

import numpy as np
import pytest
import torch

from hct.explain import compute_erfs, erf_from_maps
from hct.explain.display.figures import PALETTE, colour
from hct.models import MODEL_SPECS
from hct.models.checkpoints import load_model, save_checkpoint
from hct.models.ref import ModelRef, distinct_labels, ref_of


def test_a_ref_is_frozen_and_knows_its_colour_from_its_architecture():
    ref = ModelRef.of("def_gmic", "def_gmic-best", "ab" * 32)
    assert (ref.architecture, ref.label, ref.colour, ref.trained) == (
        "def_gmic",
        "def_gmic-best",
        MODEL_SPECS["def_gmic"].colour,
        True,
    )
    with pytest.raises(dataclasses.FrozenInstanceError):
        ref.label = "other"
    assert ref.relabelled("Def-GMIC — best") == dataclasses.replace(ref, label="Def-GMIC — best")
    assert ModelRef.of("resnet").colour is None and not ModelRef.of("gmic").trained


def test_load_model_attaches_the_ref_of_a_name_and_of_a_checkpoint(tmp_path):
    model, _ = load_model("gmic")
    assert model.ref == ModelRef("gmic", "gmic", None, MODEL_SPECS["gmic"].colour)
    card = save_checkpoint(model, tmp_path / "best")
    loaded, _ = load_model(str(tmp_path / "best.safetensors"))
    assert loaded.ref == ModelRef("gmic", "gmic-best", card.weights_sha256, MODEL_SPECS["gmic"].colour)
    save_checkpoint(model, tmp_path / "gmic")
    assert load_model(str(tmp_path / "gmic"))[0].ref.label == "gmic"  # named after its architecture


def test_a_random_initialisation_is_told_apart_only_when_a_checkpoint_shares_its_label():
    trained, init = ModelRef.of("gmic", "gmic", "ab" * 32), ModelRef.of("gmic")
    assert distinct_labels([trained, init]) == ["gmic", "gmic (random init)"]
    assert distinct_labels([init, ModelRef.of("def_gmic")]) == ["gmic", "def_gmic"]


def test_a_network_built_elsewhere_gets_a_ref_from_its_class():
    ref = ref_of(torch.nn.Conv2d(1, 1, 3), "probe")
    assert ref == ModelRef("Conv2d", "probe", None, None)


def test_erf_results_carry_the_models_ref_and_figures_take_its_colour_not_its_name(tmp_path):
    model, _ = load_model("def_gmic")
    images = torch.randn(2, 1, 64, 64)
    result = compute_erfs({"my model": model}, images, {"all": [0, 1]})[0]
    assert result.model == model.ref.relabelled("my model") and result.model_name == "my model"
    assert colour(result, 3) == MODEL_SPECS["def_gmic"].colour
    # a label that spells an architecture does not make it one
    named = erf_from_maps(np.ones((1, 8, 8), np.float32), model=ModelRef.of("probe", "gmic"))
    assert colour(named, 1) == PALETTE[1]


def test_predictions_get_their_refs_from_the_checkpoints_sha256_never_their_name(tmp_path):
    import pandas as pd

    from hct.eval.shipped import checkpoint_cards, prediction_refs

    card = save_checkpoint(load_model("def_gmic")[0], tmp_path / "mine")
    predictions = pd.DataFrame(
        {"model": ["mine", "mine", "gmic"], "checkpoint_sha256": [card.weights_sha256] * 2 + [""]}
    )
    assert prediction_refs(predictions, checkpoint_cards(tmp_path)) == [
        ModelRef("def_gmic", "mine", card.weights_sha256, MODEL_SPECS["def_gmic"].colour)
    ]
