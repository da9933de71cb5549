"""Model zoo: GMIC, Def-GMIC and HCT (Performer-RELU, Performer-Softmax, Nystrom), timm-style, and
NYU's full GMIC (``nyu_gmic``: global and local networks, MIL and fusion)."""

from hct.models.attention import ATTENTION_KINDS, SpatialAttention
from hct.models.network import ARCHITECTURE_VERSION, HighResNet, NetworkConfig
from hct.models.registry import (
    DEFAULT_INPUT_SIZE, MODEL_SPECS, ModelSpec, count_parameters, create_model, display_name, list_architectures,
    list_models, model_config, model_spec,
)

__all__ = [
    "ARCHITECTURE_VERSION", "ATTENTION_KINDS", "DEFAULT_INPUT_SIZE", "HighResNet", "MODEL_SPECS", "ModelSpec",
    "NetworkConfig", "SpatialAttention", "count_parameters", "create_model", "display_name", "list_architectures",
    "list_models", "model_config", "model_spec",
]
