"""A model's identity, made once where the model is made or loaded and carried by every result that names it.

:class:`ModelRef` holds the architecture (its paper colour with it), the label figures, tables and file
names use, and the checkpoint's sha256 (``None`` at random initialisation), so nothing downstream
parses a name to recover them. :func:`hct.models.checkpoints.load_model` attaches one to the model as
``model.ref``; :func:`ref_of` gives any model's (a model built by :func:`hct.models.create_model`: its
architecture at random initialisation).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from torch import nn

    from hct.models.card import ModelCard

RANDOM_INIT = " (random init)"


@dataclass(frozen=True)
class ModelRef:
    """Which model: ``architecture`` (a registry name, or the class name of a network built elsewhere),
    ``label`` (its name in figures, tables and file names), ``checkpoint_sha256`` (``None`` at random
    initialisation) and ``colour`` (the paper's colour of the architecture; ``None`` when it has none)."""

    architecture: str
    label: str
    checkpoint_sha256: str | None = None
    colour: str | None = None

    @property
    def trained(self) -> bool:
        """Whether the weights come from a checkpoint (not a random initialisation)."""
        return self.checkpoint_sha256 is not None

    @classmethod
    def of(cls, architecture: str, label: str | None = None, checkpoint_sha256: str | None = None) -> ModelRef:
        """The ref of ``architecture`` (labelled by its name unless ``label``), with its registry colour."""
        from hct.models.registry import MODEL_SPECS

        spec = MODEL_SPECS.get(architecture)
        return cls(architecture, label or architecture, checkpoint_sha256, spec.colour if spec else None)

    @classmethod
    def loaded(cls, spec: str, card: ModelCard | None) -> ModelRef:
        """The ref of a model loaded from ``spec`` (:func:`~hct.models.checkpoints.load_model`): labelled by
        the registry name at random initialisation (``card`` ``None``), by the architecture for a
        checkpoint named after it, else ``architecture-stem``."""
        if card is None:
            return cls.of(spec)
        stem = Path(spec).with_suffix("").name
        label = stem if stem == card.architecture else f"{card.architecture}-{stem}"
        return cls.of(card.architecture, label, card.weights_sha256)

    def relabelled(self, label: str) -> ModelRef:
        """The same model under another label."""
        return replace(self, label=label)


def ref_of(model: nn.Module, label: str | None = None) -> ModelRef:
    """The ref ``model`` carries (``label`` replacing its label when given); a network built outside
    :mod:`hct.models` gets one from its ``name`` or class name."""
    ref = getattr(model, "ref", None)
    if not isinstance(ref, ModelRef):
        ref = ModelRef.of(getattr(model, "name", None) or type(model).__name__)
    return ref if label is None else ref.relabelled(label)


def distinct_labels(refs: Sequence[ModelRef]) -> list[str]:
    """The refs' labels, a random initialisation's marked ``" (random init)"`` when a checkpoint shares
    its label (the gmic checkpoint and gmic at random initialisation side by side)."""
    labels = [ref.label for ref in refs]
    return [ref.label + RANDOM_INIT * (not ref.trained and labels.count(ref.label) > 1) for ref in refs]
