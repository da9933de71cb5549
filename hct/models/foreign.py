"""Reading weights saved by other projects' code (``torch.save(model.state_dict(), f)``), safely.

:func:`read_state_dict` loads such a file with ``weights_only=True``, so no code is ever unpickled:
a file that pickles Python objects (a whole model) is refused with a message saying how to re-save
the weights alone. :func:`foreign_kind` recognises the layouts this project imports, so each importer
can point a user who gave it the other's file to the right command, and :func:`check_fit` names the
first keys or shapes that do not fit.
"""

from __future__ import annotations

import os
import pickle
import re
from pathlib import Path

import torch
from torch import nn

from hct.errors import CheckpointError, ConfigError
from hct.models.card import checkpoint_paths

# Keys under which training scripts commonly nest a state dict next to epochs, optimiser state...
_NESTING_KEYS = ("state_dict", "model", "model_state_dict", "net")
_UNSUPPORTED = re.compile(r"Unsupported global: GLOBAL (\S+)")
# A key each importable layout always has, the layout's name, and the command that imports it.
FOREIGN_LAYOUTS = {
    "hct_official": (
        "conv_stages.first_conv.weight",
        "the official HCT code (whiterabbit-ai/hct HCTBase)",
        "python -m hct import-official",
    ),
    "nyu_gmic": ("ds_net.first_conv.weight", "NYU's GMIC (nyukat/GMIC)", "python -m hct import-nyu-gmic"),
}


def _resave(code: str) -> str:
    return (
        f"Re-save the weights alone where {code} is installed (and only if you trust the file): "
        "model = torch.load(FILE, weights_only=False); torch.save(model.state_dict(), 'state_dict.pt') "
        "(for a dict, save its state dict entry), then import that file."
    )


def _reason(err: BaseException) -> str:
    """The informative line of a ``torch.load`` error."""
    found = re.search(r"WeightsUnpickler error:\s*(\S.*)", str(err))
    lines = [found[1]] if found else [line.strip() for line in str(err).splitlines() if line.strip()]
    return f"{type(err).__name__}: {lines[0] if lines else 'no message'}"


def _is_state_dict(value: object) -> bool:
    return (
        isinstance(value, dict)
        and bool(value)
        and all(isinstance(k, str) and isinstance(v, torch.Tensor) for k, v in value.items())
    )


def read_state_dict(path: str | os.PathLike, code: str) -> dict[str, torch.Tensor]:
    """The state dict in ``path`` (saved by ``code``), loaded with ``weights_only=True``.

    A dict that nests exactly one state dict under ``state_dict``, ``model``, ``model_state_dict``
    or ``net`` is unwrapped; a ``module.`` prefix (``DataParallel``) on every key is dropped.
    """
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"{path} is not a file; give the state-dict file saved by {code}")
    with open(path, "rb") as handle:
        header = handle.read(4)
    if not header.startswith((b"PK\x03\x04", b"\x80")) and _old_pickle(path):
        raise CheckpointError(
            f"{path} is a pickle of protocol 0 or 1 (Python's text pickle), which torch.save "
            "never writes, so it is not read; save the state dict with "
            "torch.save(model.state_dict(), FILE) and import that file."
        )
    if not header.startswith((b"PK\x03\x04", b"\x80")):  # torch.save's zip archive, or its legacy pickle
        raise CheckpointError(
            f"{path} is not a PyTorch file saved by torch.save (it is neither a zip archive nor "
            f"a pickle); give the state-dict file saved by {code}"
        )
    try:
        loaded = torch.load(path, weights_only=True, map_location="cpu")
    except (pickle.UnpicklingError, RuntimeError, EOFError, KeyError, ValueError, OSError) as err:
        found = _UNSUPPORTED.search(str(err))
        if found:
            raise CheckpointError(
                f"{path} needs more than weights to load: it pickles the Python object {found[1]} (a whole model "
                "saved with torch.save(model, f), or a dict holding such objects), and loading it would run code, "
                f"so it is refused. {_resave(code)}"
            ) from err
        raise CheckpointError(
            f"{path} cannot be read as a PyTorch file ({_reason(err)}); it is truncated, "
            f"corrupt or of another format: give the state-dict file saved by {code}"
        ) from err
    state = _unwrap(loaded, path, code)
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


def _unwrap(loaded: object, path: Path, code: str) -> dict[str, torch.Tensor]:
    if _is_state_dict(loaded):
        return loaded
    nested = [key for key in _NESTING_KEYS if isinstance(loaded, dict) and _is_state_dict(loaded.get(key))]
    if len(nested) == 1:
        return loaded[nested[0]]
    if nested:
        raise CheckpointError(
            f"{path} holds several state dicts ({nested}); which is the model's is ambiguous. {_resave(code)}"
        )
    found = f"keys {sorted(map(str, loaded))[:6]}" if isinstance(loaded, dict) else f"a {type(loaded).__name__}"
    raise CheckpointError(f"{path} holds {found}, not a state dict of tensors. {_resave(code)}")


def read_for_import(
    path: str | os.PathLike, out: str | os.PathLike, overwrite: bool, code: str, layout: str
) -> dict[str, torch.Tensor]:
    """What an importer starts with: the state dict in ``path`` (saved by ``code``, laid out as ``layout``),
    after refusing an existing checkpoint at ``out`` (unless ``overwrite``) and the other importer's layout."""
    weights_path, card_path = checkpoint_paths(out)
    if not overwrite and (weights_path.exists() or card_path.exists()):
        raise ConfigError(f"{weights_path} already exists; choose another --out or pass --overwrite")
    state = read_state_dict(path, code)
    refuse_other_layout(state, layout, path)
    return state


def foreign_kind(state: dict[str, torch.Tensor]) -> str | None:
    """Which of :data:`FOREIGN_LAYOUTS` ``state`` is laid out as (``None``: none of them)."""
    return next((kind for kind, (key, _, _) in FOREIGN_LAYOUTS.items() if key in state), None)


def refuse_other_layout(state: dict[str, torch.Tensor], expected: str, source: str | os.PathLike) -> None:
    """:class:`CheckpointError` when ``state`` is another importable layout than ``expected``, naming
    the command that imports it."""
    kind = foreign_kind(state)
    if kind is not None and kind != expected:
        _, name, command = FOREIGN_LAYOUTS[kind]
        raise CheckpointError(
            f"{source} holds weights of {name}, not of {FOREIGN_LAYOUTS[expected][1]}; import it with {command}"
        )


def check_fit(model: nn.Module, state: dict[str, torch.Tensor], source: str | os.PathLike, layout: str) -> None:
    """:class:`CheckpointError` listing the missing, unexpected and misshaped keys (at most three of
    each, in the project's names) when ``state`` does not fit ``model``."""
    expected = model.state_dict()
    missing = sorted(set(expected) - set(state))
    unexpected = sorted(set(state) - set(expected))
    misshaped = [
        f"{key} {tuple(state[key].shape)} (expected {tuple(value.shape)})"
        for key, value in expected.items()
        if key in state and state[key].shape != value.shape
    ]
    problems = [
        f"{label} {len(items)}: {', '.join(items[:3])}{', ...' if len(items) > 3 else ''}"
        for label, items in (("missing", missing), ("unexpected", unexpected), ("misshaped", misshaped))
        if items
    ]
    if problems:
        raise CheckpointError(
            f"{source} does not fit {model.name} in {layout} (names in this project's terms) - " + "; ".join(problems)
        )
