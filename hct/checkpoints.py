"""Models to and from checkpoints: save a model with its card, load one, or resolve what a user named.

The files themselves (safetensors weights, JSON model card, sha256 check) are :mod:`hct.weights`;
building a model from them is :func:`hct.models.create_model` with ``checkpoint_path``.
"""

from __future__ import annotations

import hashlib
import os
import threading
from dataclasses import replace
from pathlib import Path

import torch
from safetensors.torch import save_file

from hct.errors import CheckpointError
from hct.io import atomic_write, file_sha256
from hct.models import ARCHITECTURE_VERSION, HighResNet, count_parameters, create_model, list_architectures, model_spec
from hct.models.nyu_gmic import NYU_ENSEMBLE, NYU_PERCENT_T, NyuGmicEnsemble
from hct.paths import check_name
from hct.weights import (
    CHECKPOINT_DIR,
    ModelCard,
    checkpoint_paths,
    code_version,
    find_checkpoints,
    read_card,
    write_card,
)


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
        architecture=model.name, overrides=overrides, parameters=count_parameters(model),
        code_version=code_version(), weights_sha256=file_sha256(weights_path),
        weights_dtype=str(dtype).removeprefix("torch."), architecture_version=ARCHITECTURE_VERSION, **card_fields,
    )
    write_card(card, card_path)
    return card


def load_checkpoint(
    path: str | os.PathLike, *, device: str | torch.device = "cpu", architecture: str | None = None
) -> tuple[HighResNet, ModelCard]:
    """Load a checkpoint into a fresh model in eval mode on ``device``; weights are cast to float32.

    Raises :class:`CheckpointError` naming the file when it is missing, corrupt, truncated, tampered
    with (sha256 mismatch), of another network layout, or for another architecture than
    ``architecture`` (when given).
    """
    card = read_card(path)
    if architecture is not None and card.architecture != architecture:
        raise CheckpointError(f"{checkpoint_paths(path)[0]} holds a {card.architecture} model, not {architecture}")
    if card.architecture not in list_architectures():
        raise CheckpointError(f"{checkpoint_paths(path)[1]} names an unknown architecture {card.architecture!r}; "
                              f"known: {list_architectures()}")
    model = create_model(card.architecture, checkpoint_path=path)
    return model.to(device).eval(), card


_SEEDED = threading.Lock()  # one seeded initialisation at a time: the generator is process-wide


def load_model(spec: str, *, device: str | torch.device = "cpu") -> tuple[HighResNet, ModelCard | None]:
    """A checkpoint path in eval mode on ``device``, or a registry name for a model at random initialisation
    (card ``None``) drawn from seed 0, so that every load of a name (app, CLI) gives the same weights;
    ``nyu_gmic_ensemble``: NYU's five GMIC models imported into ``checkpoints/``, averaged."""
    if spec in list_architectures():
        with _SEEDED, torch.random.fork_rng(devices=[]):
            torch.manual_seed(0)
            model = create_model(spec)
        return model.to(device).eval(), None
    if spec == NYU_ENSEMBLE:
        return load_nyu_ensemble(CHECKPOINT_DIR, device=device)
    check_name(spec, "checkpoint path")
    if not (Path(spec).exists() or checkpoint_paths(spec)[1].exists()):
        raise CheckpointError(f"model {spec!r} is neither a registered name ({list_architectures()}) nor a "
                              "checkpoint file")
    return load_checkpoint(spec, device=device)


def model_label(spec: str, card: ModelCard | None) -> str:
    """How figures and file names call a model loaded from ``spec``: the registry name at random
    initialisation, the architecture for a checkpoint named after it, else ``architecture-stem``."""
    if card is None:
        return spec
    stem = Path(spec).with_suffix("").name
    return stem if stem == card.architecture else f"{card.architecture}-{stem}"


def load_nyu_ensemble(folder: str | os.PathLike, device: str | torch.device = "cpu"
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
        raise CheckpointError(f"the NYU GMIC ensemble needs their five models imported into {folder}; model(s) "
                              f"{missing} are missing: import each with python -m hct import-nyu-gmic FILE --index N "
                              f"--out {Path(folder) / 'nyu_gmic_N.safetensors'}")
    loaded = [load_checkpoint(found[index], device=device) for index in sorted(found)]
    card = replace(loaded[0][1], training={**loaded[0][1].training, "ensemble_of": [str(found[i]) for i in sorted(found)]},
                   weights_sha256=hashlib.sha256("".join(c.weights_sha256 for _, c in loaded).encode()).hexdigest())
    ensemble = NyuGmicEnsemble([model for model, _ in loaded]).to(device).eval()
    ensemble.pretrained_cfg = {**ensemble.pretrained_cfg, "file": str(folder)}
    return ensemble, card
