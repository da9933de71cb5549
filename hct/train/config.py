"""The training configuration: one JSON (or YAML) file, checked whole before any work starts."""

from __future__ import annotations

import dataclasses
import json
import math
from dataclasses import dataclass, field
from pathlib import Path

import torch

from hct.data.image.preprocess import parse_size
from hct.errors import ConfigError, PathError, TrainConfigError
from hct.models import list_models, model_config
from hct.paths import check_name, existing

STAGES = ("patch", "image")
OPTIMIZERS = ("adam", "asam")
DEVICES = ("auto", "cpu", "cuda")
# The paper's settings per stage (Technical Details): learning rate, batch size.
STAGE_DEFAULTS = {"patch": {"lr": 6e-4, "batch_size": 160}, "image": {"lr": 2e-5, "batch_size": 32}}


@dataclass
class TrainConfig:
    """Every setting of a training run. ``None`` means "the stage's / the device's default".

    ``micro_batch`` is the gradient-accumulation unit: each step sums the gradients of
    ``batch_size / micro_batch`` micro-batches (per process under torchrun). ``bf16`` and
    ``channels_last`` default to on when training on CUDA. ``max_steps`` ends a smoke run early;
    ``time_budget_s`` cuts the number of epochs so the run ends in time (recorded in the card).
    """

    manifest: str
    model: str = "gmic"
    overrides: dict = field(default_factory=dict)
    stage: str = "patch"
    input_size: tuple[int, int] = (3328, 2560)
    patch_size: int = 512
    lr: float | None = None
    batch_size: int | None = None
    micro_batch: int | None = None
    epochs: int = 80
    optimizer: str = "adam"
    rho: float = 0.05
    eta: float = 0.01
    weight_decay: float = 0.0
    seed: int = 0
    device: str = "auto"
    workers: int = 0
    out_dir: str = "runs/train"
    init_checkpoint: str | None = None
    bf16: bool | None = None
    channels_last: bool | None = None
    max_steps: int | None = None
    time_budget_s: float | None = None
    balance_classes: bool = False
    clear_background: bool = True
    flips: bool = True
    noise_std: float = 0.05
    log_every: int = 10
    checkpoint_every: int = 0
    cache_dir: str | None = None

    def __post_init__(self) -> None:
        self._check()

    @property
    def resolved_lr(self) -> float:
        return self.lr if self.lr is not None else STAGE_DEFAULTS[self.stage]["lr"]

    @property
    def resolved_batch(self) -> int:
        return self.batch_size if self.batch_size is not None else STAGE_DEFAULTS[self.stage]["batch_size"]

    @property
    def resolved_micro_batch(self) -> int:
        return self.micro_batch if self.micro_batch is not None else self.resolved_batch

    def resolved_device(self) -> torch.device:
        if self.device == "auto":
            return torch.device("cuda" if torch.cuda.is_available() else "cpu")
        return torch.device(self.device)

    def to_dict(self) -> dict:
        data = dataclasses.asdict(self)
        data["input_size"] = list(self.input_size)
        return data

    def replace(self, **changes) -> "TrainConfig":
        """A copy with ``changes`` applied (and checked)."""
        return TrainConfig.from_dict({**self.to_dict(), **changes})

    @classmethod
    def from_dict(cls, data: dict) -> "TrainConfig":
        """Build from plain values; unknown or missing keys raise :class:`ConfigError`."""
        if not isinstance(data, dict):
            raise TrainConfigError(f"A training config is a JSON object of settings, not {type(data).__name__}.")
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise TrainConfigError(f"Unknown config key(s) {unknown}; allowed keys: {sorted(known)}.")
        if "manifest" not in data:
            raise TrainConfigError(
                "The config needs `manifest`: the CSV manifest of the training data "
                "(e.g. written by `python -m hct phantom`)."
            )
        return cls(**data)

    def _check(self) -> None:  # noqa: C901 - one flat list of rules reads best
        problems: list[str] = []

        def expect(ok: bool, message: str) -> None:
            if not ok:
                problems.append(message)

        def is_int(value) -> bool:
            return isinstance(value, int) and not isinstance(value, bool)

        def is_num(value) -> bool:
            return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)

        expect(self.model in list_models(), f"model {self.model!r} (choose one of {list_models()})")
        if not isinstance(self.overrides, dict):
            problems.append(f"overrides {self.overrides!r} (a JSON object of model settings)")
        elif self.model in list_models():
            try:
                model_config(self.model, **self.overrides)
            except (TypeError, ValueError) as err:
                problems.append(f"overrides: {err}")
        expect(self.stage in STAGES, f"stage {self.stage!r} (use {' or '.join(STAGES)})")
        try:
            self.input_size = parse_size(self.input_size)
        except ConfigError as err:
            problems.append(f"input_size: {err}")
        expect(is_int(self.patch_size) and self.patch_size >= 32, f"patch_size {self.patch_size!r} (an integer >= 32)")
        for name in ("lr", "batch_size", "micro_batch", "max_steps", "time_budget_s"):
            value = getattr(self, name)
            check = is_num if name in ("lr", "time_budget_s") else is_int
            expect(value is None or (check(value) and value > 0), f"{name} {value!r} (a positive number or null)")
        for name in ("epochs", "log_every"):
            expect(
                is_int(getattr(self, name)) and getattr(self, name) >= 1,
                f"{name} {getattr(self, name)!r} (an integer >= 1)",
            )
        for name in ("workers", "checkpoint_every", "seed"):
            expect(
                is_int(getattr(self, name)) and getattr(self, name) >= 0,
                f"{name} {getattr(self, name)!r} (an integer >= 0)",
            )
        for name in ("rho", "eta", "weight_decay", "noise_std"):
            expect(
                is_num(getattr(self, name)) and getattr(self, name) >= 0,
                f"{name} {getattr(self, name)!r} (a number >= 0)",
            )
        expect(self.optimizer in OPTIMIZERS, f"optimizer {self.optimizer!r} (use {' or '.join(OPTIMIZERS)})")
        expect(self.device in DEVICES, f"device {self.device!r} (use {', '.join(DEVICES)})")
        for name in ("bf16", "channels_last"):
            expect(getattr(self, name) in (None, True, False), f"{name} {getattr(self, name)!r} (true, false or null)")
        for name in ("balance_classes", "clear_background", "flips"):
            expect(isinstance(getattr(self, name), bool), f"{name} {getattr(self, name)!r} (true or false)")
        if not problems and self.resolved_batch % self.resolved_micro_batch:
            problems.append(f"micro_batch {self.resolved_micro_batch} does not divide batch_size {self.resolved_batch}")
        if not problems and self.stage == "patch" and min(self.input_size) < self.patch_size:
            problems.append(f"patch_size {self.patch_size} is larger than input_size {self.input_size}")
        if self.device == "cuda" and not torch.cuda.is_available():
            problems.append("device 'cuda' but no CUDA GPU is visible (use 'auto' or 'cpu')")
        problems += _manifest_problems(self.manifest)
        if self.init_checkpoint is not None:
            stem = Path(str(self.init_checkpoint))
            stem = stem.with_suffix("") if stem.suffix in (".safetensors", ".json") else stem
            expect(
                stem.with_suffix(".safetensors").is_file() and stem.with_suffix(".json").is_file(),
                f"init_checkpoint {self.init_checkpoint!r} (no .safetensors + .json checkpoint there)",
            )
        for name in ("out_dir", "cache_dir"):
            value = getattr(self, name)
            if not (isinstance(value, str) and value or value is None and name == "cache_dir"):
                problems.append(f"{name} {value!r} (a folder path{' or null' if name == 'cache_dir' else ''})")
            elif value:
                try:
                    check_name(value, name)
                except PathError as err:
                    problems.append(str(err))
        if problems:
            raise TrainConfigError("Invalid training config: " + "; ".join(problems) + ".")


def _manifest_problems(manifest: object) -> list[str]:
    """What is wrong with the config's manifest: not a path, missing, a folder, not a readable CSV manifest."""
    from hct.data.sets.manifest import read_manifest

    hint = "write one with `python -m hct data check --write-manifest` or `python -m hct phantom`"
    if not isinstance(manifest, str) or not manifest:
        return [f"manifest {manifest!r} (the path of a manifest CSV; {hint})"]
    try:
        folder = existing(manifest, "any", "manifest", hint)
        if folder.is_dir():
            inside = folder / "manifest.csv"
            return [
                f"the manifest {manifest} is a folder, not a CSV file; give "
                + (f"{inside} (found there)" if inside.is_file() else f"the manifest CSV ({hint})")
            ]
        read_manifest(folder)
    except ConfigError as err:
        return [str(err).rstrip(".")]
    return []


def load_config(path: str | Path) -> TrainConfig:
    """Read a JSON config (YAML too when PyYAML is installed); relative paths stay as written."""
    path = existing(path, "file", "config file", "give the JSON (or YAML) training config")
    try:
        text = path.read_text()
    except (OSError, UnicodeDecodeError) as err:
        raise TrainConfigError(f"Config {path} is not a readable text file ({err}).") from err
    if path.suffix in (".yaml", ".yml"):
        try:
            import yaml
        except ModuleNotFoundError as err:
            raise TrainConfigError(
                f"{path} is YAML but PyYAML is not installed; use a JSON config or pip install pyyaml."
            ) from err
        try:
            data = yaml.safe_load(text)
        except yaml.YAMLError as err:
            raise TrainConfigError(f"Config {path} is not valid YAML: {err}") from err
    else:
        try:
            data = json.loads(text)
        except json.JSONDecodeError as err:
            raise TrainConfigError(f"Config {path} is not valid JSON: {err}") from err
    return TrainConfig.from_dict(data)
