"""Training: the two-stage loop (patch, then image), ASAM, torchrun, the job store and the model zoo.

The names below are imported from their modules on first use (``hct.lazy``)."""

from hct.lazy import lazy_exports

lazy_exports(
    __name__,
    {
        "hct.train.asam": ("ASAM", "frozen_bn_stats"),
        "hct.train.config": ("STAGE_DEFAULTS", "TrainConfig", "load_config"),
        "hct.train.data": ("ImageBank", "augment", "build_bank", "load_bank"),
        "hct.train.jobs": ("Job", "JobStore"),
        "hct.train.loop": ("TrainResult", "cosine_lr", "predict_bank", "read_metrics", "train"),
        "hct.train.zoo": ("build_zoo",),
        "hct.train.zoo_config": ("ZooConfig",),
    },
)
