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
import pickle
import re
from pathlib import Path

import torch

from hct.checkpoints import save_checkpoint
from hct.errors import CheckpointError, ConfigError
from hct.models.network import STAGE_CHANNELS, HighResNet
from hct.models.registry import create_model
from hct.weights import ModelCard, checkpoint_paths, file_sha256

OFFICIAL_MODELS = ("hct_performer_relu", "hct_performer_softmax")
# Keys under which training scripts commonly nest a state dict next to epochs, optimiser state...
_NESTING_KEYS = ("state_dict", "model", "model_state_dict", "net")
_STAGE_KEY = re.compile(r"^(conv|ac)_stages\.layer_list\.(\d+)\.(\d+)\.(.+)$")
_UNSUPPORTED = re.compile(r"Unsupported global: GLOBAL (\S+)")
_RESAVE = ("Re-save the weights alone where the official code is installed (and only if you trust the file): "
           "model = torch.load(FILE, weights_only=False); torch.save(model.state_dict(), 'hct_state_dict.pt') "
           "(for a dict, save its state dict entry), then import that file.")


def _reason(err: BaseException) -> str:
    """The informative line of a ``torch.load`` error."""
    found = re.search(r"WeightsUnpickler error:\s*(\S.*)", str(err))
    lines = [found[1]] if found else [line.strip() for line in str(err).splitlines() if line.strip()]
    return f"{type(err).__name__}: {lines[0] if lines else 'no message'}"


def _is_state_dict(value: object) -> bool:
    return (isinstance(value, dict) and bool(value)
            and all(isinstance(k, str) and isinstance(v, torch.Tensor) for k, v in value.items()))


def read_official_state_dict(path: str | os.PathLike) -> dict[str, torch.Tensor]:
    """The state dict in ``path``, loaded with ``weights_only=True`` (no code is ever unpickled).

    A dict that nests exactly one state dict under ``state_dict``, ``model``, ``model_state_dict``
    or ``net`` is unwrapped; a ``module.`` prefix (``DataParallel``) on every key is dropped.
    """
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"{path} is not a file; give the official state-dict file saved by torch.save")
    with open(path, "rb") as handle:
        header = handle.read(4)
    if not header.startswith((b"PK\x03\x04", b"\x80")) and _old_pickle(path):
        raise CheckpointError(f"{path} is a pickle of protocol 0 or 1 (Python's text pickle), which torch.save never "
                              "writes, so it is not read; save the state dict with torch.save(model.state_dict(), FILE) and import that file.")
    if not header.startswith((b"PK\x03\x04", b"\x80")):  # torch.save's zip archive, or its legacy pickle
        raise CheckpointError(f"{path} is not a PyTorch file saved by torch.save (it is neither a zip archive nor "
                              "a pickle); give the official code's state-dict file")
    try:
        loaded = torch.load(path, weights_only=True, map_location="cpu")
    except (pickle.UnpicklingError, RuntimeError, EOFError, KeyError, ValueError, OSError) as err:
        found = _UNSUPPORTED.search(str(err))
        if found:
            raise CheckpointError(
                f"{path} needs more than weights to load: it pickles the Python object {found[1]} (a whole model "
                "saved with torch.save(model, f), or a dict holding such objects), and loading it would run code, "
                f"so it is refused. {_RESAVE}"
            ) from err
        raise CheckpointError(f"{path} cannot be read as a PyTorch file ({_reason(err)}); it is truncated, "
                              "corrupt or of another format: give the official code's state-dict file") from err
    state = _unwrap(loaded, path)
    if all(key.startswith("module.") for key in state):
        state = {key.removeprefix("module."): value for key, value in state.items()}
    return state


def _old_pickle(path: Path, ops: int = 64) -> bool:
    """Whether ``path`` opens as a pickle of protocol 0 or 1: its first ``ops`` opcodes parse (nothing is run)."""
    import itertools
    import pickletools

    try:
        with open(path, "rb") as handle:
            return sum(1 for _ in itertools.islice(pickletools.genops(handle), ops)) > 0
    except Exception:  # noqa: BLE001 - pickletools raises several kinds for what is no pickle
        return False


def non_finite_note(state: dict[str, torch.Tensor]) -> str:
    """A warning naming the tensors with NaN or infinite values (a diverged training run), or ''."""
    bad = {k: int((~torch.isfinite(v)).sum()) for k, v in state.items() if v.is_floating_point()
           and not bool(torch.isfinite(v).all())}
    if not bad:
        return ""
    total = sum(v.numel() for v in state.values() if v.is_floating_point())
    return (f"{sum(bad.values()):,} of {total:,} weights are NaN or infinite (in {len(bad)} tensors, e.g. "
            f"{', '.join(list(bad)[:3])}): the model will predict NaN. The training that made them diverged; "
            "use other weights.")


def _unwrap(loaded: object, path: Path) -> dict[str, torch.Tensor]:
    if _is_state_dict(loaded):
        return loaded
    nested = [key for key in _NESTING_KEYS if isinstance(loaded, dict) and _is_state_dict(loaded.get(key))]
    if len(nested) == 1:
        return loaded[nested[0]]
    if nested:
        raise CheckpointError(f"{path} holds several state dicts ({nested}); which is HCT's is ambiguous. {_RESAVE}")
    found = f"keys {sorted(map(str, loaded))[:6]}" if isinstance(loaded, dict) else f"a {type(loaded).__name__}"
    raise CheckpointError(f"{path} holds {found}, not a state dict of tensors. {_RESAVE}")


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
    uneven = {f"{kind}_stages.layer_list.{index}": sorted(found) for (kind, index), found in blocks.items()
              if found != {0, 1}}
    if uneven:
        raise CheckpointError(f"{source}: every stage must have 2 blocks (blocks_per_stage [2, 2, 2, 2, 2]); "
                              f"found blocks {uneven}")
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
    :func:`_check_fit` to report)."""
    overrides = {}
    stem, classifier = state.get("stem.weight"), state.get("classifier.weight")
    if stem is not None and stem.dim() == 4:
        overrides["in_chans"] = stem.shape[1]
    if classifier is not None and classifier.dim() == 2:
        overrides["num_classes"] = classifier.shape[0]
    return overrides


def _check_fit(model: HighResNet, state: dict[str, torch.Tensor], source: Path) -> None:
    expected = model.state_dict()
    missing = sorted(set(expected) - set(state))
    unexpected = sorted(set(state) - set(expected))
    misshaped = [f"{key} {tuple(state[key].shape)} (expected {tuple(value.shape)})"
                 for key, value in expected.items() if key in state and state[key].shape != value.shape]
    problems = [f"{label} {len(items)}: {', '.join(items[:3])}{', ...' if len(items) > 3 else ''}"
                for label, items in (("missing", missing), ("unexpected", unexpected), ("misshaped", misshaped))
                if items]
    if problems:
        raise CheckpointError(
            f"{source} does not fit {model.name} in the official layout (names in this project's terms) - "
            + "; ".join(problems) + ". Is it an HCTBase state dict saved with the official code, unmodified?"
        )


def import_official(path: str | os.PathLike, model_name: str, out: str | os.PathLike, *,
                    first_stage_stride: int = 2, overwrite: bool = False) -> ModelCard:
    """Convert the official HCT state-dict file ``path`` into the checkpoint ``out`` (weights + card).

    ``model_name`` picks the Performer kernel (the official ``use_performer_RELU``); the number of
    AC stages, classes and input channels come from the file; ``first_stage_stride`` is the
    official ``first_layer_stride`` (default 2). Raises :class:`CheckpointError` for a file that is
    not such a state dict, :class:`ConfigError` for a bad model name or an existing ``out``.
    """
    if model_name not in OFFICIAL_MODELS:
        raise ConfigError(f"the official code builds {list(OFFICIAL_MODELS)}, not {model_name!r}")
    weights_path, card_path = checkpoint_paths(out)
    if not overwrite and (weights_path.exists() or card_path.exists()):
        raise ConfigError(f"{weights_path} already exists; choose another --out or pass --overwrite")
    path = Path(path)
    state = read_official_state_dict(path)
    num_ac_stages = official_stages(state, str(path))
    converted = convert_official_state_dict(state, num_ac_stages)
    model = create_model(model_name, num_ac_stages=num_ac_stages, first_stage_stride=first_stage_stride,
                         **_shape_overrides(converted))
    _check_fit(model, converted, path)
    model.load_state_dict(converted, strict=True)
    sha = file_sha256(path)
    warning = non_finite_note(converted)
    return save_checkpoint(
        model, weights_path,
        training_data=(f"official-format HCT weights (whiterabbit-ai/hct HCTBase state dict) imported from "
                       f"{path.name} (sha256 {sha}); their training data, preprocessing and input size are not "
                       "recorded in the file"),
        training={"command": "python -m hct import-official", "source": str(path), "source_sha256": sha,
                  "first_stage_stride": first_stage_stride, **({"warning": warning} if warning else {})},
        preprocessing={},
    )
