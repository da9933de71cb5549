"""A timm-style model registry: one :class:`ModelSpec` per architecture, ``create_model`` and ``list_models``."""

from __future__ import annotations

from dataclasses import dataclass, fields, replace

from hct.errors import OverrideError, UnknownModelError
from hct.models.network import HighResNet, NetworkConfig
from hct.models.nyu_gmic import NYU_INPUT_SIZE, NyuGmic, NyuGmicConfig

DEFAULT_INPUT_SIZE = (1664, 1280)  # half the paper's resolution: the shipped checkpoints' input


@dataclass(frozen=True)
class ModelSpec:
    """Everything the project knows of one architecture: its config, its name in figures and tables,
    its colour (the paper's: GMIC blue, Def-GMIC green, HCT orange), its input size and preprocessing
    mode at random initialisation."""

    name: str
    display_name: str
    colour: str
    config: NetworkConfig | NyuGmicConfig
    input_size: tuple[int, int] = DEFAULT_INPUT_SIZE
    preprocessing_mode: str = "canonical"  # hct.data.preprocess's mode its inputs are made in


# The paper's five architectures (HCT's reference setting strides its first stage: more compact),
# and GMIC as NYU published it, with its local network (their weights: python -m hct import-nyu-gmic).
MODEL_SPECS: dict[str, ModelSpec] = {
    spec.name: spec
    for spec in (
        ModelSpec("gmic", "GMIC", "#1f77b4", NetworkConfig(mixer="conv", num_mixer_stages=0, first_stage_stride=1)),
        ModelSpec(
            "def_gmic",
            "Def-GMIC",
            "#2ca02c",
            NetworkConfig(mixer="deformable", num_mixer_stages=2, first_stage_stride=1),
        ),
        ModelSpec(
            "hct_performer_relu",
            "HCT (Performer-RELU)",
            "#ff7f0e",
            NetworkConfig(mixer="performer_relu", num_mixer_stages=2, first_stage_stride=2),
        ),
        ModelSpec(
            "hct_performer_softmax",
            "HCT (Performer-Softmax)",
            "#d62728",
            NetworkConfig(mixer="performer_softmax", num_mixer_stages=2, first_stage_stride=2),
        ),
        ModelSpec(
            "hct_nystrom",
            "HCT (Nystrom)",
            "#9467bd",
            NetworkConfig(mixer="nystrom", num_mixer_stages=2, first_stage_stride=2),
        ),
        ModelSpec("nyu_gmic", "GMIC (NYU, full)", "#17becf", NyuGmicConfig(), NYU_INPUT_SIZE, "nyu_gmic"),
    )
}

# Friendly override names: AC stages for HCT, deformable stages for Def-GMIC.
_ALIASES = {"num_ac_stages": "num_mixer_stages", "num_deform_stages": "num_mixer_stages"}


def list_models() -> list[str]:
    """The classifiers (the paper's five): ``model(x)`` gives two logits, so they train, predict and
    are explained alike. :func:`list_architectures` adds ``nyu_gmic``."""
    return [name for name, spec in MODEL_SPECS.items() if isinstance(spec.config, NetworkConfig)]


def list_architectures() -> list[str]:
    """Every name accepted by :func:`create_model`: the classifiers and ``nyu_gmic`` (NYU's full GMIC,
    whose ``forward`` gives a :class:`~hct.models.nyu_gmic.GmicOutput`)."""
    return list(MODEL_SPECS)


def model_spec(name: str) -> ModelSpec:
    """The :class:`ModelSpec` of ``name``; :class:`UnknownModelError` lists the known names."""
    if name not in MODEL_SPECS:
        raise UnknownModelError(f"unknown model {name!r}; choose one of {list_architectures()}")
    return MODEL_SPECS[name]


def display_name(name: str) -> str:
    """The architecture's name in figures and tables (the name itself when it is not registered)."""
    return MODEL_SPECS[name].display_name if name in MODEL_SPECS else name


def model_config(name: str, **overrides) -> NetworkConfig | NyuGmicConfig:
    """The configuration ``create_model(name, **overrides)`` builds."""
    base = model_spec(name).config
    allowed = {f.name for f in fields(base)} - {"mixer"}
    resolved = {}
    for key, value in overrides.items():
        key = _ALIASES.get(key, key)
        if key not in allowed:
            raise UnknownModelError(f"unknown override {key!r} for {name}; allowed: {sorted(allowed | set(_ALIASES))}")
        _check_override(key, value)
        resolved[key] = tuple(value) if isinstance(value, list) else value  # a card's JSON lists
    return replace(base, **resolved)


def _is_int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


# override -> (what it must be, in words; the check). Attention splits 16 * 2**k channels into heads.
_OVERRIDE_RULES = {
    "num_mixer_stages": ("an integer in 0..5", lambda v: _is_int(v) and 0 <= v <= 5),
    "num_classes": ("an integer >= 1", lambda v: _is_int(v) and 1 <= v <= 100_000),
    "in_chans": ("an integer in 1..64", lambda v: _is_int(v) and 1 <= v <= 64),
    "first_stage_stride": ("1 or 2", lambda v: _is_int(v) and v in (1, 2)),
    "drop_rate": (
        "a number in [0, 1)",
        lambda v: isinstance(v, (int, float)) and not isinstance(v, bool) and 0 <= v < 1,
    ),
    "attn_drop": (
        "a number in [0, 1)",
        lambda v: isinstance(v, (int, float)) and not isinstance(v, bool) and 0 <= v < 1,
    ),
    "heads": (
        "1, 2, 4, 8 or 16 (it must divide every attention stage's channels)",
        lambda v: _is_int(v) and v in (1, 2, 4, 8, 16),
    ),
    # nyu_gmic's (NyuGmicConfig)
    "percent_t": (
        "a number in (0, 1]",
        lambda v: isinstance(v, (int, float)) and not isinstance(v, bool) and 0 < v <= 1,
    ),
    "num_crops": ("an integer in 1..64", lambda v: _is_int(v) and 1 <= v <= 64),
    "crop_size": (
        "two integers in 8..4096",
        lambda v: isinstance(v, (list, tuple)) and len(v) == 2 and all(_is_int(x) and 8 <= x <= 4096 for x in v),
    ),
    "post_processing_dim": ("an integer in 1..4096", lambda v: _is_int(v) and 1 <= v <= 4096),
}


def _check_override(key: str, value: object) -> None:
    what, ok = _OVERRIDE_RULES.get(key, ("", lambda v: True))  # a field without a rule: the network checks it
    if not ok(value):
        raise OverrideError(f"override {key} = {value!r}: it must be {what}")


def create_model(name: str, **overrides) -> HighResNet | NyuGmic:
    """Build model ``name`` (see :func:`list_architectures`) at random initialisation, as timm's
    ``create_model`` does (its :func:`~hct.models.ref.ref_of`: the architecture at random
    initialisation). Loading weights is :func:`hct.models.checkpoints.load_model`'s.

    Overrides: ``num_classes``, ``in_chans``, ``first_stage_stride``, ``num_ac_stages`` (HCT) or
    ``num_deform_stages`` (Def-GMIC), ``drop_rate`` (before the classifier), ``attn_drop``, ``heads``;
    for ``nyu_gmic`` those of :class:`~hct.models.nyu_gmic.NyuGmicConfig` (``percent_t``, ``num_crops``...).
    """
    config = model_config(name, **overrides)
    model = NyuGmic(config, name=name) if isinstance(config, NyuGmicConfig) else HighResNet(config, name=name)
    spec = model_spec(name)
    model.pretrained_cfg = {
        "architecture": name,
        "input_size": spec.input_size,
        "pretrained": False,
        "preprocessing": {"mode": spec.preprocessing_mode},
    }
    return model


def count_parameters(model) -> int:
    """Number of trainable parameters (the random Performer projections are buffers, not counted)."""
    return sum(p.numel() for p in model.parameters() if p.requires_grad)
