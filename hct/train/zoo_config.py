"""The settings of the model zoo (:func:`hct.train.zoo.build_zoo`), apart from the zoo itself so that the
command line's ``zoo`` options are built from them without importing torch."""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass, field
from pathlib import Path

from hct.data.options import BENCHMARK_SPLITS
from hct.errors import ConfigError


@dataclass(frozen=True)
class ZooConfig:
    """Settings of :func:`~hct.train.zoo.build_zoo` (the ``python -m hct zoo`` options and ``configs/zoo.json``).

    ``time_budget_s`` caps each model's training (both stages); ``total_budget_s`` is a deadline
    for the whole run, counted from its start: once the data is ready, what is left of it is shared
    equally by the models not yet trained (and capped by ``time_budget_s``).
    """

    out: str = "checkpoints"
    phantom_dir: str = "data/phantom"
    splits: dict = field(default_factory=lambda: dict(BENCHMARK_SPLITS))
    image_size: str = "1664x1280"
    compression: str = "rle"
    patch_size: int = 256
    epochs_patch: int = 10
    epochs_image: int = 10
    batch_patch: int = 64
    batch_image: int = 16
    micro_batch: int | None = None
    lr_patch: float = 6e-4
    lr_image: float = 2e-4
    optimizer: str = "adam"
    device: str = "auto"
    models: tuple[str, ...] = ("all",)
    time_budget_s: float | None = None
    total_budget_s: float | None = None
    seed: int = 0
    workers: int = 4
    runs_dir: str | None = None

    def __post_init__(self) -> None:
        from hct.models import list_models
        from hct.train.config import OPTIMIZERS

        models = tuple(list_models()) if tuple(self.models) in ((), ("all",)) else tuple(self.models)
        unknown = sorted(set(models) - set(list_models()))
        if unknown:
            raise ConfigError(f"Unknown model(s) {unknown}; choose from {list_models()} or 'all'.")
        object.__setattr__(self, "models", models)
        if self.optimizer not in OPTIMIZERS:
            raise ConfigError(f"optimizer {self.optimizer!r}: use one of {OPTIMIZERS}.")

    def to_dict(self) -> dict:
        return {k: (list(v) if isinstance(v, tuple) else v) for k, v in dataclasses.asdict(self).items()}


def zoo_config_from_file(path: str | Path) -> ZooConfig:
    """A :class:`ZooConfig` from a JSON object of its fields (unknown keys refused)."""
    try:
        data = json.loads(Path(path).read_text())
    except (OSError, json.JSONDecodeError) as err:
        raise ConfigError(f"Zoo config {path} is not a readable JSON file: {err}") from err
    known = {f.name for f in dataclasses.fields(ZooConfig)}
    if not isinstance(data, dict) or set(data) - known:
        raise ConfigError(f"Zoo config {path} must be a JSON object with keys among {sorted(known)}.")
    return ZooConfig(**data)
