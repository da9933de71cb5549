"""NYU's published GMIC weights (nyukat/GMIC ``models/sample_model_N.p``) as project checkpoints.

Their files are ``torch.save(model.state_dict(), f)`` of their ``GMIC`` (keys ``ds_net.*``,
``left_postprocess_net.*``, ``dn_resnet.*``, ``mil_attn_*``, ``classifier_linear``, ``fusion_dnn``).
:func:`import_nyu_gmic` reads one without unpickling code (:mod:`hct.models.foreign`), renames
the keys onto :class:`~hct.models.nyu_gmic.NyuGmic`, checks that every key and shape fits, and writes
a checkpoint whose card records the source file's sha256, the model index, its ``percent_t``, and
where the weights come from and under which licence.
"""

from __future__ import annotations

import os
from pathlib import Path

import torch

from hct.data.image.preprocess import preprocessing_info
from hct.errors import ConfigError
from hct.io import file_sha256
from hct.models.card import ModelCard, checkpoint_paths
from hct.models.checkpoints import save_checkpoint
from hct.models.foreign import check_fit, read_for_import
from hct.models.nyu_gmic import NYU_INPUT_SIZE, NYU_PERCENT_T
from hct.models.registry import create_model

NYU_CODE = "NYU's GMIC code (nyukat/GMIC)"
NYU_ORIGIN = "https://github.com/nyukat/GMIC (models/sample_model_{index}.p)"
NYU_LICENCE = (
    "GNU AGPLv3, as nyukat/GMIC is licensed (Copyright (C) 2020 Yiqiu Shen, Nan Wu, Jason Phang, "
    "Jungkyu Park, Kangning Liu, Sudarshini Tyagi, Laura Heacock, S. Gene Kim, Linda Moy, Kyunghyun Cho, "
    "Krzysztof J. Geras); the weights keep their licence in this checkpoint"
)
# Their module prefixes, and this project's.
_RENAMES = (
    ("ds_net.first_conv.", "global_network.stem."),
    ("ds_net.layer_list.", "global_network.stages."),
    ("ds_net.final_bn.", "global_network.final_bn."),
    ("left_postprocess_net.gn_conv_last.", "saliency_conv."),
    ("dn_resnet.", "local_network."),
    ("mil_attn_V.", "mil.attention_v."),
    ("mil_attn_U.", "mil.gate_u."),
    ("mil_attn_w.", "mil.attention_w."),
    ("classifier_linear.", "mil.classifier."),
    ("fusion_dnn.", "fusion."),
)
# Saved in some of their files but used by no module of GMIC (nyukat/GMIC issue 29): dropped.
UNUSED_KEYS = ("shared_rep_filter.weight",)


def convert_nyu_state_dict(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """``state`` renamed from their GMIC's modules to :class:`NyuGmic`'s; unknown keys are kept as
    they are (for :func:`~hct.models.foreign.check_fit` to report), :data:`UNUSED_KEYS` dropped."""
    converted = {}
    for key, value in state.items():
        if key in UNUSED_KEYS:
            continue
        for theirs, ours in _RENAMES:
            if key.startswith(theirs):
                key = ours + key.removeprefix(theirs)
                if ours == "global_network.stages.":
                    key = key.replace(".downsample.0.", ".downsample.")
                break
        converted[key] = value
    return converted


def import_nyu_gmic(
    path: str | os.PathLike, index: int, out: str | os.PathLike, *, overwrite: bool = False
) -> ModelCard:
    """Convert their ``sample_model_{index}.p`` at ``path`` into the checkpoint ``out`` (weights + card).

    ``index`` (1..5) sets ``percent_t`` as their ``PERCENT_T_DICT`` does. Raises :class:`ConfigError`
    for a bad index or an existing ``out``, :class:`~hct.errors.CheckpointError` for a file that is not
    their GMIC's state dict (naming the first mismatching keys or shapes); nothing is written then.
    """
    if index not in NYU_PERCENT_T:
        raise ConfigError(
            f"--index must be one of {sorted(NYU_PERCENT_T)} (their models/sample_model_N.p), got {index}"
        )
    path = Path(path)
    state = read_for_import(path, out, overwrite, NYU_CODE, "nyu_gmic")
    dropped = sorted(set(UNUSED_KEYS) & set(state))
    converted = convert_nyu_state_dict(state)
    model = create_model("nyu_gmic", percent_t=NYU_PERCENT_T[index])
    check_fit(model, converted, path, "the layout of NYU's GMIC (GMIC-ResNet-18, run_model.py's parameters)")
    model.load_state_dict(converted, strict=True)
    sha = file_sha256(path)
    origin = NYU_ORIGIN.format(index=index)
    return save_checkpoint(
        model,
        checkpoint_paths(out)[0],
        input_size=NYU_INPUT_SIZE,
        stage="image",
        training_data=(
            f"NYU's GMIC model {index} ({origin}), trained by its authors on NYU screening mammograms "
            f"(Shen et al. 2021); imported from {path.name} (sha256 {sha}). Licence: {NYU_LICENCE}"
        ),
        training={
            "command": "python -m hct import-nyu-gmic",
            "source": str(path),
            "source_sha256": sha,
            "model_index": index,
            "percent_t": NYU_PERCENT_T[index],
            "origin": origin,
            "licence": NYU_LICENCE,
            "dropped_keys": dropped,
        },
        preprocessing=preprocessing_info("nyu_gmic", clear_background=False),
    )
