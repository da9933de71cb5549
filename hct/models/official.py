"""Weights of the official HCT code (whiterabbit-ai/hct, ``HCTBase``) as project checkpoints.

The official code saves ``torch.save(model.state_dict(), f)``: a dict of tensors named after its
modules (``conv_stages.layer_list.i.j...``, ``ac_stages.layer_list.i.j.performer_attention...``).
:func:`import_official` reads such a file without unpickling any code (``weights_only=True``),
maps the names onto :class:`~hct.models.network.HighResNet` (layout 2, the official one) and saves
a checkpoint with its model card. The file records neither the Performer kernel nor the first
stage's stride, so the caller names both.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

import torch

from hct.errors import CheckpointError, ConfigError
from hct.io import file_sha256
from hct.models.card import ModelCard, checkpoint_paths
from hct.models.checkpoints import save_checkpoint
from hct.models.foreign import check_fit, read_for_import
from hct.models.network import STAGE_CHANNELS
from hct.models.options import OFFICIAL_MODELS
from hct.models.registry import create_model

OFFICIAL_CODE = "the official HCT code (whiterabbit-ai/hct)"
_STAGE_KEY = re.compile(r"^(conv|ac)_stages\.layer_list\.(\d+)\.(\d+)\.(.+)$")


def non_finite_note(state: dict[str, torch.Tensor]) -> str:
    """A warning naming the tensors with NaN or infinite values (a diverged training run), or ''."""
    bad = {
        k: int((~torch.isfinite(v)).sum())
        for k, v in state.items()
        if v.is_floating_point() and not bool(torch.isfinite(v).all())
    }
    if not bad:
        return ""
    total = sum(v.numel() for v in state.values() if v.is_floating_point())
    return (
        f"{sum(bad.values()):,} of {total:,} weights are NaN or infinite (in {len(bad)} tensors, e.g. "
        f"{', '.join(list(bad)[:3])}): the model will predict NaN. The training that made them diverged; "
        "use other weights."
    )


def official_stages(state: dict[str, torch.Tensor], source: str = "the state dict") -> int:
    """The number of AC stages of an official HCT state dict; :class:`CheckpointError` for anything
    this project cannot build (not HCTBase's layout, no AC stage, not 5 stages of 2 blocks)."""
    blocks: dict[tuple[str, int], set[int]] = {}
    for key in state:
        match = _STAGE_KEY.match(key)
        if match:
            blocks.setdefault((match[1], int(match[2])), set()).add(int(match[3]))
    if "conv_stages.first_conv.weight" not in state or not blocks:
        raise CheckpointError(
            f"{source} is not a state dict of the official HCT (whiterabbit-ai/hct HCTBase): it lacks "
            f"conv_stages.first_conv.weight and conv_stages.layer_list.*; its first keys are {sorted(state)[:4]}"
        )
    conv = sum(kind == "conv" for kind, _ in blocks)
    ac = sum(kind == "ac" for kind, _ in blocks)
    if conv + ac != len(STAGE_CHANNELS) or not 1 <= ac < len(STAGE_CHANNELS):
        raise CheckpointError(
            f"{source} has {conv} convolutional and {ac} AC stages; this project builds HCT with 5 stages, "
            "1 to 4 of them AC stages (HCTBase with num_conv_stages 1 to 4)"
        )
    uneven = {
        f"{kind}_stages.layer_list.{index}": sorted(found) for (kind, index), found in blocks.items() if found != {0, 1}
    }
    if uneven:
        raise CheckpointError(
            f"{source}: every stage must have 2 blocks (blocks_per_stage [2, 2, 2, 2, 2]); found blocks {uneven}"
        )
    return ac


def convert_official_state_dict(state: dict[str, torch.Tensor], num_ac_stages: int) -> dict[str, torch.Tensor]:
    """``state`` renamed from HCTBase's modules to :class:`HighResNet`'s; unknown keys are kept as they are."""
    first_ac = len(STAGE_CHANNELS) - num_ac_stages
    converted = {}
    for key, value in state.items():
        match = _STAGE_KEY.match(key)
        if match:
            kind, stage, block, rest = match[1], int(match[2]), match[3], match[4]
            stage += first_ac if kind == "ac" else 0
            rest = rest.replace("downsample.0.", "downsample.").replace("performer_attention.", "attention.attn.")
            key = f"stages.{stage}.{block}.{rest}"
        elif key.startswith("conv_stages.first_conv."):
            key = "stem." + key.removeprefix("conv_stages.first_conv.")
        converted[key] = value
    return converted


def _shape_overrides(state: dict[str, torch.Tensor]) -> dict[str, int]:
    """``in_chans`` and ``num_classes`` read off the stem and classifier (misshaped ones are left to
    :func:`~hct.models.foreign.check_fit` to report)."""
    overrides = {}
    stem, classifier = state.get("stem.weight"), state.get("classifier.weight")
    if stem is not None and stem.dim() == 4:
        overrides["in_chans"] = stem.shape[1]
    if classifier is not None and classifier.dim() == 2:
        overrides["num_classes"] = classifier.shape[0]
    return overrides


def import_official(
    path: str | os.PathLike,
    model_name: str,
    out: str | os.PathLike,
    *,
    first_stage_stride: int = 2,
    overwrite: bool = False,
) -> ModelCard:
    """Convert the official HCT state-dict file ``path`` into the checkpoint ``out`` (weights + card).

    ``model_name`` picks the Performer kernel (the official ``use_performer_RELU``); the number of
    AC stages, classes and input channels come from the file; ``first_stage_stride`` is the
    official ``first_layer_stride`` (default 2). Raises :class:`CheckpointError` for a file that is
    not such a state dict, :class:`ConfigError` for a bad model name or an existing ``out``.
    """
    if model_name not in OFFICIAL_MODELS:
        raise ConfigError(f"the official code builds {list(OFFICIAL_MODELS)}, not {model_name!r}")
    path = Path(path)
    state = read_for_import(path, out, overwrite, OFFICIAL_CODE, "hct_official")
    num_ac_stages = official_stages(state, str(path))
    converted = convert_official_state_dict(state, num_ac_stages)
    model = create_model(
        model_name, num_ac_stages=num_ac_stages, first_stage_stride=first_stage_stride, **_shape_overrides(converted)
    )
    check_fit(model, converted, path, "the official layout")
    model.load_state_dict(converted, strict=True)
    sha = file_sha256(path)
    warning = non_finite_note(converted)
    return save_checkpoint(
        model,
        checkpoint_paths(out)[0],
        training_data=(
            f"official-format HCT weights (whiterabbit-ai/hct HCTBase state dict) imported from "
            f"{path.name} (sha256 {sha}); their training data, preprocessing and input size are not "
            "recorded in the file"
        ),
        training={
            "command": "python -m hct import-official",
            "source": str(path),
            "source_sha256": sha,
            "first_stage_stride": first_stage_stride,
            **({"warning": warning} if warning else {}),
        },
        preprocessing={},
    )
