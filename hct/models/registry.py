"""A timm-style model registry: ``create_model(name, **overrides)`` and ``list_models()``."""

from __future__ import annotations

from dataclasses import fields, replace

from hct.models.network import HighResNet, NetworkConfig

# The paper's five architectures. HCT's reference setting strides its first stage (more compact).
_DEFAULTS: dict[str, NetworkConfig] = {
    "gmic": NetworkConfig(mixer="conv", num_special_stages=0, first_stage_stride=1),
    "def_gmic": NetworkConfig(mixer="deformable", num_special_stages=2, first_stage_stride=1),
    "hct_performer_relu": NetworkConfig(mixer="performer_relu", num_special_stages=2, first_stage_stride=2),
    "hct_performer_softmax": NetworkConfig(mixer="performer_softmax", num_special_stages=2, first_stage_stride=2),
    "hct_nystrom": NetworkConfig(mixer="nystrom", num_special_stages=2, first_stage_stride=2),
}

# Friendly override names: AC stages for HCT, deformable stages for Def-GMIC.
_ALIASES = {"num_ac_stages": "num_special_stages", "num_deform_stages": "num_special_stages"}

DISPLAY_NAMES = {
    "gmic": "GMIC",
    "def_gmic": "Def-GMIC",
    "hct_performer_relu": "HCT (Performer-RELU)",
    "hct_performer_softmax": "HCT (Performer-Softmax)",
    "hct_nystrom": "HCT (Nystrom)",
}


def list_models() -> list[str]:
    """Names accepted by :func:`create_model`."""
    return list(_DEFAULTS)


def model_config(name: str, **overrides) -> NetworkConfig:
    """The configuration ``create_model(name, **overrides)`` builds."""
    if name not in _DEFAULTS:
        raise ValueError(f"unknown model {name!r}; choose one of {list_models()}")
    allowed = {f.name for f in fields(NetworkConfig)} - {"mixer"}
    resolved = {}
    for key, value in overrides.items():
        key = _ALIASES.get(key, key)
        if key not in allowed:
            raise ValueError(f"unknown override {key!r} for {name}; allowed: {sorted(allowed | set(_ALIASES))}")
        resolved[key] = value
    return replace(_DEFAULTS[name], **resolved)


def create_model(name: str, **overrides) -> HighResNet:
    """Build model ``name`` (see :func:`list_models`) with optional overrides.

    Overrides: ``num_classes``, ``in_chans``, ``first_stage_stride``, ``num_ac_stages`` (HCT) or
    ``num_deform_stages`` (Def-GMIC), ``drop_rate`` (before the classifier), ``attn_drop``, ``heads``.
    """
    return HighResNet(model_config(name, **overrides), name=name)


def count_parameters(model) -> int:
    """Number of trainable parameters (the random Performer projections are buffers, not counted)."""
    return sum(p.numel() for p in model.parameters() if p.requires_grad)
