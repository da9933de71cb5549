"""Training: the two-stage loop (patch, then image), ASAM, torchrun, the job store and the model zoo."""

from hct.train.asam import ASAM, frozen_bn_stats
from hct.train.config import STAGE_DEFAULTS, TrainConfig, load_config
from hct.train.data import ImageBank, build_bank, load_bank
from hct.train.jobs import Job, JobStore
from hct.train.loop import TrainResult, cosine_lr, predict_bank, read_metrics, train
from hct.train.zoo import ZooConfig, build_zoo

__all__ = [
    "ASAM", "STAGE_DEFAULTS", "ImageBank", "Job", "JobStore", "TrainConfig", "TrainResult", "ZooConfig",
    "build_bank", "build_zoo", "cosine_lr", "frozen_bn_stats", "load_bank", "load_config",
    "predict_bank", "read_metrics", "train",
]
