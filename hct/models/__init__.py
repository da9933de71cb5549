"""Model zoo: GMIC, Def-GMIC and HCT (Performer-RELU, Performer-Softmax, Nystrom), timm-style, and
NYU's full GMIC (``nyu_gmic``: global and local networks, MIL and fusion); their checkpoints
(``load_model``, the one loader) and a loaded model's identity (``ModelRef``).

The names below are imported from their modules on first use (``hct.lazy``)."""

from hct.lazy import lazy_exports

lazy_exports(
    __name__,
    {
        "hct.models.attention": ("ATTENTION_KINDS", "SpatialAttention"),
        "hct.models.checkpoints": ("load_model", "save_checkpoint"),
        "hct.models.network": ("ARCHITECTURE_VERSION", "HighResNet", "NetworkConfig"),
        "hct.models.registry": (
            "DEFAULT_INPUT_SIZE",
            "MODEL_SPECS",
            "ModelSpec",
            "count_parameters",
            "create_model",
            "display_name",
            "list_architectures",
            "list_models",
            "model_config",
            "model_spec",
        ),
        "hct.models.ref": ("ModelRef", "ref_of"),
    },
)
