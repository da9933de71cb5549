"""Model zoo: GMIC, Def-GMIC and HCT (Performer-RELU, Performer-Softmax, Nystrom)."""

from hct.models.attention import ATTENTION_KINDS, SpatialAttention
from hct.models.network import HighResNet, NetworkConfig
from hct.models.registry import DISPLAY_NAMES, count_parameters, create_model, list_models, model_config

__all__ = [
    "ATTENTION_KINDS", "DISPLAY_NAMES", "HighResNet", "NetworkConfig", "SpatialAttention",
    "count_parameters", "create_model", "list_models", "model_config",
]
