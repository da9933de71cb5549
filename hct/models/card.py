"""Checkpoint files on disk: safetensors weights and their JSON model card, read and written safely.

A checkpoint is two files side by side: ``NAME.safetensors`` (the weights; safetensors never runs
code) and ``NAME.json`` (the model card: architecture and overrides, parameter count, input
resolution, training data, metrics, code, architecture and preprocessing versions, and the sha256
of the weights file). Reading checks the sha256 before reading a byte of the weights, so a
truncated or tampered file is refused. This module knows nothing of the networks; a model from a
checkpoint is :func:`hct.models.checkpoints.load_model`'s.
"""

from __future__ import annotations

import json
import os
import subprocess
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from hct import __version__
from hct.errors import CheckpointError
from hct.io import atomic_write, file_sha256

if TYPE_CHECKING:
    import torch

CHECKPOINT_DIR = Path(__file__).resolve().parents[2] / "checkpoints"
WEIGHTS_SUFFIX, CARD_SUFFIX = ".safetensors", ".json"


@dataclass
class ModelCard:
    """What a checkpoint is: enough to rebuild the model and to judge its numbers.

    ``architecture_version`` is the network layout the weights fit (``hct.models.ARCHITECTURE_VERSION``;
    1 for checkpoints written before the official-layout alignment); ``preprocessing`` says how
    the model's training inputs were made (mode, background clearing, version).
    """

    architecture: str
    overrides: dict = field(default_factory=dict)
    parameters: int = 0
    input_size: tuple[int, int] | None = None
    stage: str = ""  # "patch" or "image"
    training_data: str = ""
    metrics: dict = field(default_factory=dict)
    training: dict = field(default_factory=dict)  # config, epochs, time, machine
    code_version: str = ""
    weights_sha256: str = ""
    weights_dtype: str = "float32"
    architecture_version: int = 1
    preprocessing: dict = field(default_factory=dict)

    def to_json(self) -> str:
        return json.dumps(self.__dict__, indent=2, sort_keys=True, default=list)

    @classmethod
    def from_dict(cls, data: dict, source: Path) -> "ModelCard":
        from hct.models.card_schema import check_card

        card = cls(**check_card(data, source))
        if card.input_size is not None:
            card.input_size = tuple(card.input_size)
        return card


def code_version() -> str:
    """The package version plus the git commit when run from a checkout."""
    try:
        commit = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"],
            cwd=Path(__file__).parent,
            capture_output=True,
            text=True,
            timeout=5,
            check=True,
        ).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        commit = ""
    return f"{__version__}+{commit}" if commit else __version__


def checkpoint_paths(path: str | os.PathLike) -> tuple[Path, Path]:
    """``(weights, card)`` for a path given with either suffix or none."""
    path = Path(path)
    stem = path.with_suffix("") if path.suffix in (WEIGHTS_SUFFIX, CARD_SUFFIX) else path
    return stem.with_suffix(WEIGHTS_SUFFIX), stem.with_suffix(CARD_SUFFIX)


def write_card(card: ModelCard, path: str | os.PathLike) -> Path:
    """Write ``card`` next to the weights of ``path`` (atomically); returns the card's path."""
    _, card_path = checkpoint_paths(path)
    atomic_write(card_path, card.to_json())
    return card_path


def read_card(path: str | os.PathLike) -> ModelCard:
    """The model card of a checkpoint, without loading its weights."""
    _, card_path = checkpoint_paths(path)
    if not card_path.is_file():
        raise CheckpointError(f"no model card at {card_path}: a checkpoint needs its .json card next to the weights")
    try:
        data = json.loads(card_path.read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as err:
        raise CheckpointError(
            f"model card {card_path} is not valid JSON ({err}); restore it from the original checkpoint"
        ) from err
    if not isinstance(data, dict):
        raise CheckpointError(f"model card {card_path} is not a JSON object")
    return ModelCard.from_dict(data, card_path)


def read_weights(path: str | os.PathLike, card: ModelCard) -> dict[str, torch.Tensor]:
    """The float32 state dict of a checkpoint whose card (:func:`read_card`) is ``card``, after checking
    the weights' sha256 against it.

    Raises :class:`CheckpointError` naming the file when it is missing, corrupt, truncated or
    tampered with (sha256 mismatch).
    """
    weights_path, card_path = checkpoint_paths(path)
    if not weights_path.is_file():
        raise CheckpointError(f"weights file {weights_path} is missing (its card {card_path.name} exists)")
    actual = file_sha256(weights_path)
    if actual != card.weights_sha256:
        raise CheckpointError(
            f"{weights_path} does not match its model card (sha256 {actual[:12]}... expected "
            f"{card.weights_sha256[:12]}...): the file is truncated, corrupt or was modified; do not use it"
        )
    from safetensors import SafetensorError
    from safetensors.torch import load_file

    try:
        state = load_file(str(weights_path))
    except (SafetensorError, OSError, ValueError) as err:
        raise CheckpointError(f"{weights_path} is not a readable safetensors file: {err}") from err
    return {k: v.float() if v.is_floating_point() else v for k, v in state.items()}


def find_checkpoints(folder: str | os.PathLike = CHECKPOINT_DIR) -> list[Path]:
    """Weights files that have a model card next to them, sorted by name."""
    folder = Path(folder)
    if not folder.is_dir():
        return []
    return sorted(p for p in folder.glob(f"*{WEIGHTS_SUFFIX}") if p.with_suffix(CARD_SUFFIX).is_file())
