"""The model zoo, reproducible by one command: phantom data, patch then image training, test AUC.

Each model is trained in two stages as in the paper (patches, then whole images initialised from
the patch model), evaluated on the phantom's held-out test split (AUC with a 10,000-resample
percentile-bootstrap 95% CI), and stored in ``out`` as ``<model>.safetensors`` (float16) with its
model card and ``<model>.metrics.jsonl`` (both stages' curves). The phantom is decoded once into an
in-memory bank shared by all models and stages.
"""

from __future__ import annotations

import json
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import torch

from hct.checkpoints import load_checkpoint, save_checkpoint
from hct.data import generate_phantom, parse_size
from hct.devices import describe_device
from hct.errors import ConfigError
from hct.eval import bootstrap_auc
from hct.models import list_models
from hct.train.config import OPTIMIZERS, TrainConfig
from hct.train.data import load_bank
from hct.train.loop import predict_bank, train

PATCH_SHARE = 1 / 3  # of a model's time budget, for its patch stage; the image stage gets the rest


@dataclass(frozen=True)
class ZooConfig:
    """Settings of :func:`build_zoo` (the ``python -m hct zoo`` options)."""

    out: str = "checkpoints"
    phantom_dir: str = "data/phantom"
    n_images: int = 600
    image_size: str | tuple[int, int] = "1664x1280"
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
    models: tuple[str, ...] = tuple(list_models())
    time_budget_s: float | None = None
    seed: int = 0
    workers: int = 4
    runs_dir: str | None = None


    def __post_init__(self) -> None:
        models = tuple(list_models()) if tuple(self.models) in ((), ("all",)) else tuple(self.models)
        unknown = sorted(set(models) - set(list_models()))
        if unknown:
            raise ConfigError(f"Unknown model(s) {unknown}; choose from {list_models()} or 'all'.")
        object.__setattr__(self, "models", models)
        if self.optimizer not in OPTIMIZERS:
            raise ConfigError(f"optimizer {self.optimizer!r}: use one of {OPTIMIZERS}.")


def zoo_config_from_file(path: str | Path) -> ZooConfig:
    """A :class:`ZooConfig` from a JSON object of its fields (unknown keys refused)."""
    try:
        data = json.loads(Path(path).read_text())
    except (OSError, json.JSONDecodeError) as err:
        raise ConfigError(f"Zoo config {path} is not a readable JSON file: {err}") from err
    known = set(ZooConfig.__dataclass_fields__)
    if not isinstance(data, dict) or set(data) - known:
        raise ConfigError(f"Zoo config {path} must be a JSON object with keys among {sorted(known)}.")
    return ZooConfig(**data)


def _stage_lines(path: Path, stage: str) -> list[str]:
    return [json.dumps({"stage": stage, **json.loads(line)}) for line in path.read_text().splitlines() if line.strip()]


def build_zoo(zoo: ZooConfig, progress: bool = True) -> list[dict]:
    """Train, evaluate and save every model of ``zoo.models``; returns one summary dict per model."""
    size = parse_size(zoo.image_size)
    phantom = Path(zoo.phantom_dir)
    manifest = phantom / "manifest.csv"
    if not manifest.is_file():
        print(f"generating {zoo.n_images} phantom images at {size[0]}x{size[1]} in {phantom}", file=sys.stderr)
        generate_phantom(zoo.n_images, phantom, size=size, seed=zoo.seed, workers=zoo.workers)
    runs = Path(zoo.runs_dir) if zoo.runs_dir else phantom / "runs"
    started = time.perf_counter()
    bank = load_bank(manifest, size, workers=zoo.workers)
    print(f"phantom bank {tuple(bank.images.shape)} ready in {time.perf_counter() - started:.1f} s", file=sys.stderr)
    test_items = bank.indices("test")
    test_labels = bank.labels[test_items].numpy()
    if len(set(test_labels.tolist())) < 2:
        raise ConfigError(f"The phantom's test split ({len(test_items)} images) lacks a class; use more --n-images.")
    split_counts = {s: bank.splits.count(s) for s in ("train", "val", "test")}
    data_text = (f"HCT phantom (hct.data.generate_phantom, seed {zoo.seed}): {len(bank.image_ids)} images at "
                 f"{size[0]}x{size[1]}, patient-level splits {split_counts}")
    out = Path(zoo.out)
    out.mkdir(parents=True, exist_ok=True)
    summaries = []
    for name in zoo.models:
        model_start = time.perf_counter()
        common = dict(manifest=str(manifest), model=name, input_size=list(size), patch_size=zoo.patch_size,
                      micro_batch=zoo.micro_batch, optimizer=zoo.optimizer, seed=zoo.seed, device=zoo.device,
                      log_every=5)
        patch_cfg = TrainConfig(**common, stage="patch", lr=zoo.lr_patch, batch_size=zoo.batch_patch,
                                epochs=zoo.epochs_patch, out_dir=str(runs / name / "patch"),
                                time_budget_s=zoo.time_budget_s * PATCH_SHARE if zoo.time_budget_s else None)
        patch = train(patch_cfg, bank=bank, progress=progress)
        left = zoo.time_budget_s - (time.perf_counter() - model_start) if zoo.time_budget_s else None
        image_cfg = TrainConfig(**common, stage="image", lr=zoo.lr_image, batch_size=zoo.batch_image,
                                epochs=zoo.epochs_image, out_dir=str(runs / name / "image"),
                                init_checkpoint=str(patch.best_checkpoint),
                                time_budget_s=max(left, 1.0) if left is not None else None)
        image = train(image_cfg, bank=bank, progress=progress)

        model, card = load_checkpoint(image.best_checkpoint, device=image_cfg.resolved_device())
        on_cuda = image_cfg.resolved_device().type == "cuda"
        scores, _ = predict_bank(model, bank, test_items, zoo.micro_batch or zoo.batch_image, bf16=on_cuda,
                                 channels_last=on_cuda)
        result = bootstrap_auc(test_labels, scores.numpy(), n_boot=10_000, seed=zoo.seed)
        stages = {}
        for stage, run, cfg in (("patch", patch, patch_cfg), ("image", image, image_cfg)):
            stages[stage] = {"epochs_completed": run.epochs_completed, "epochs_planned": cfg.epochs,
                             "steps": run.steps, "time_s": run.time_s, "best_val_auc": run.best_val_auc,
                             "stopped_by_time_budget": run.stopped_by_time_budget, "lr": cfg.resolved_lr,
                             "batch_size": cfg.resolved_batch, "input_size": list(card.input_size)
                             if stage == "image" else [zoo.patch_size, zoo.patch_size]}
        total_s = round(time.perf_counter() - model_start, 1)
        metrics = {"test_auc": result.auc, "test_auc_low": result.low, "test_auc_high": result.high,
                   "test_n_pos": result.n_pos, "test_n_neg": result.n_neg, "val_auc": image.best_val_auc}
        save_checkpoint(
            model, out / name, dtype=torch.float16, input_size=tuple(size), stage="image",
            training_data=data_text, metrics=metrics,
            training={"stages": stages, "time_s": total_s, "machine": describe_device(image_cfg.resolved_device()),
                      "optimizer": zoo.optimizer, "seed": zoo.seed, "command": "python -m hct zoo",
                      "zoo": {k: (list(v) if isinstance(v, tuple) else v) for k, v in zoo.__dict__.items()}},
        )
        lines = _stage_lines(patch.metrics_path, "patch") + _stage_lines(image.metrics_path, "image")
        (out / f"{name}.metrics.jsonl").write_text("\n".join(lines) + "\n")
        summary = {"model": name, "test_auc": round(result.auc, 4), "ci95": [round(result.low, 4), round(result.high, 4)],
                   "patch_val_auc": patch.best_val_auc, "image_val_auc": image.best_val_auc, "time_s": total_s,
                   "checkpoint": str(out / f"{name}.safetensors")}
        print(json.dumps(summary), file=sys.stderr)
        summaries.append(summary)
    return summaries
