"""Models to and from checkpoints: :func:`save_checkpoint`, and :func:`load_model`, the one loader.

The files themselves (safetensors weights, JSON model card, sha256 check) are :mod:`hct.models.card`.
Every loaded model carries its :class:`~hct.models.ref.ModelRef` as ``model.ref``.
"""

from __future__ import annotations

import hashlib
import os
import threading
from dataclasses import replace
from pathlib import Path

import torch
from safetensors.torch import save_file

from hct.errors import CheckpointError, ConfigError, ModelCardError
from hct.io import atomic_write, file_sha256
from hct.models.card import (
    CHECKPOINT_DIR,
    ModelCard,
    checkpoint_paths,
    code_version,
    find_checkpoints,
    read_card,
    read_weights,
    write_card,
)
from hct.models.network import ARCHITECTURE_VERSION, HighResNet
from hct.models.nyu_gmic import NYU_ENSEMBLE, NYU_PERCENT_T, NyuGmic, NyuGmicEnsemble
from hct.models.ref import ModelRef
from hct.models.registry import (
    DEFAULT_INPUT_SIZE,
    count_parameters,
    create_model,
    list_architectures,
    model_config,
    model_spec,
)
from hct.paths import check_name


def save_checkpoint(
    model: HighResNet, path: str | os.PathLike, *, dtype: torch.dtype = torch.float32, **card_fields
) -> ModelCard:
    """Save ``model``'s weights (floating tensors cast to ``dtype``) and its model card.

    ``card_fields`` fill the :class:`ModelCard` (input_size, stage, training_data, metrics, training,
    preprocessing).
    """
    weights_path, card_path = checkpoint_paths(path)
    state = {
        k: (v.to(dtype) if v.is_floating_point() else v).detach().cpu().contiguous()
        for k, v in model.state_dict().items()
    }
    config, reference = model.config.to_dict(), model_spec(model.name).config.to_dict()
    overrides = {k: v for k, v in config.items() if reference[k] != v}
    atomic_write(weights_path, lambda tmp: save_file(state, str(tmp), metadata={"architecture": model.name}))
    card = ModelCard(
        architecture=model.name,
        overrides=overrides,
        parameters=count_parameters(model),
        code_version=code_version(),
        weights_sha256=file_sha256(weights_path),
        weights_dtype=str(dtype).removeprefix("torch."),
        architecture_version=ARCHITECTURE_VERSION,
        **card_fields,
    )
    write_card(card, card_path)
    return card


def _load_file(path: str | os.PathLike, device: str | torch.device) -> tuple[HighResNet | NyuGmic, ModelCard]:
    """A checkpoint into a fresh model in eval mode on ``device``, its card read once; weights cast to float32.

    Raises :class:`CheckpointError` naming the file when it is missing, corrupt, truncated, tampered
    with (sha256 mismatch), of another network layout or of an unknown architecture.
    """
    card = read_card(path)
    if card.architecture not in list_architectures():
        raise CheckpointError(
            f"{checkpoint_paths(path)[1]} names an unknown architecture {card.architecture!r}; "
            f"known: {list_architectures()}"
        )
    _check_layout(card, path)
    try:
        model_config(card.architecture, **card.overrides)
    except ConfigError as err:
        raise ModelCardError(f"{checkpoint_paths(path)[1]}: its overrides are invalid ({err})") from err
    state = read_weights(path, card)
    model = create_model(card.architecture, **card.overrides)
    try:
        model.load_state_dict(state, strict=True)
    except RuntimeError as err:
        raise CheckpointError(
            f"{path} does not fit architecture {card.architecture}: {_key_mismatch(model, state) or err}"
        ) from err
    model.pretrained_cfg = pretrained_cfg(card, path)
    return model.to(device).eval(), card


def pretrained_cfg(card: ModelCard, path: str | os.PathLike) -> dict:
    """A model's ``pretrained_cfg`` from its card: input size, training data, test AUC, sha256."""
    metrics = card.metrics
    return {
        "architecture": card.architecture,
        "pretrained": True,
        "file": str(path),
        "input_size": card.input_size or DEFAULT_INPUT_SIZE,
        "training_data": card.training_data,
        "test_auc": metrics.get("test_auc"),
        "test_auc_ci": (metrics.get("test_auc_low"), metrics.get("test_auc_high")),
        "weights_sha256": card.weights_sha256,
        "preprocessing": card.preprocessing,
    }


def _check_layout(card: ModelCard, path) -> None:
    if card.architecture_version != ARCHITECTURE_VERSION:
        raise CheckpointError(
            f"{path} was saved for network layout {card.architecture_version}; this version builds layout "
            f"{ARCHITECTURE_VERSION} (the official HCT/GMIC layout: stem max-pool without padding, q/k/v bias, "
            "a 1x1 shortcut in every stage's first block), so its weights do not fit. Retrain it "
            "(python -m hct zoo) or import official weights (python -m hct import-official)."
        )


def _key_mismatch(model: HighResNet | NyuGmic, state: dict) -> str:
    expected, given = set(model.state_dict()), set(state)
    parts = []
    if expected - given:
        parts.append(f"missing {sorted(expected - given)[:4]}")
    if given - expected:
        parts.append(f"unexpected {sorted(given - expected)[:4]}")
    return "; ".join(parts)


_SEEDED = threading.Lock()  # one seeded initialisation at a time: the generator is process-wide


def load_model(spec: str | os.PathLike, *, device: str | torch.device = "cpu") -> tuple[HighResNet, ModelCard | None]:
    """A checkpoint path in eval mode on ``device``, or a registry name for a model at random initialisation
    (card ``None``) drawn from seed 0, so that every load of a name (app, CLI) gives the same weights;
    ``nyu_gmic_ensemble``: NYU's five GMIC models imported into ``checkpoints/``, averaged. The model's
    ``ref`` (:class:`~hct.models.ref.ModelRef`) says which it is: see :meth:`ModelRef.loaded`."""
    spec = str(spec)
    if spec in list_architectures():
        with _SEEDED, torch.random.fork_rng(devices=[]):
            torch.manual_seed(0)
            model, card = create_model(spec), None
    elif spec == NYU_ENSEMBLE:
        model, card = _load_nyu_ensemble(CHECKPOINT_DIR, device=device)
    else:
        check_name(spec, "checkpoint path")
        if not (Path(spec).exists() or checkpoint_paths(spec)[1].exists()):
            raise CheckpointError(
                f"model {spec!r} is neither a registered name ({list_architectures()}) nor a checkpoint file"
            )
        model, card = _load_file(spec, device)
    model.ref = ModelRef.loaded(spec, card)
    return model.to(device).eval(), card


def _load_nyu_ensemble(
    folder: str | os.PathLike, device: str | torch.device = "cpu"
) -> tuple[NyuGmicEnsemble, ModelCard]:
    """Their ensemble from the five imported models in ``folder`` (cards naming model indices 1..5), in
    eval mode, with a card for it (model 1's, its ``training`` listing the five checkpoints, its
    ``weights_sha256`` the sha256 of the five weights' sha256s in index order).
    :class:`~hct.errors.CheckpointError` names the indices missing."""
    found: dict[int, Path] = {}
    for path in find_checkpoints(folder):
        card = read_card(path)
        if card.architecture == "nyu_gmic" and card.training.get("model_index") in NYU_PERCENT_T:
            found.setdefault(card.training["model_index"], path)
    missing = sorted(set(NYU_PERCENT_T) - set(found))
    if missing:
        raise CheckpointError(
            f"the NYU GMIC ensemble needs their five models imported into {folder}; model(s) "
            f"{missing} are missing: import each with python -m hct import-nyu-gmic FILE --index N "
            f"--out {Path(folder) / 'nyu_gmic_N.safetensors'}"
        )
    loaded = [_load_file(found[index], device) for index in sorted(found)]
    card = replace(
        loaded[0][1],
        training={**loaded[0][1].training, "ensemble_of": [str(found[i]) for i in sorted(found)]},
        weights_sha256=hashlib.sha256("".join(c.weights_sha256 for _, c in loaded).encode()).hexdigest(),
    )
    ensemble = NyuGmicEnsemble([model for model, _ in loaded]).to(device).eval()
    ensemble.pretrained_cfg = {**ensemble.pretrained_cfg, "file": str(folder)}
    return ensemble, card
