"""The model zoo, reproducible by one command: phantom benchmark, patch then image training, test AUCs.

Each model is trained in two stages as in the paper (patches centred on malignant findings or on
breast tissue of non-malignant images, then whole images initialised from the patch model), with
the paper's recipe scaled to the data and to a time budget. It is evaluated on the phantom's
held-out test split (the patch model on that split's patches, the image model on its images; AUC
with a 10,000-resample percentile-bootstrap 95% CI) and stored in ``out`` as
``<model>.safetensors`` (float16) with its model card and ``<model>.metrics.jsonl`` (both stages'
curves). The test predictions of all models go to ``out/predictions.csv``, the file
``python -m hct predict`` writes, each row carrying its checkpoint's sha256. The phantom is decoded
once into an in-memory bank shared by all models and stages.
"""

from __future__ import annotations

import dataclasses
import json
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd
import torch

from hct.checkpoints import load_checkpoint, save_checkpoint
from hct.data import generate_phantom, parse_size, preprocessing_info, read_manifest
from hct.data.phantom import BENCHMARK_SPLITS, MANIFEST_NAME
from hct.devices import describe_device
from hct.errors import ConfigError, HCTError
from hct.eval import bootstrap_auc, predict_batches, write_predictions
from hct.models import list_models
from hct.train.config import OPTIMIZERS, TrainConfig
from hct.train.data import ImageBank, build_bank, random_key
from hct.train.loop import TrainResult, predict_bank, train
from hct.weights import write_card

PATCH_SHARE = 1 / 3  # of a model's time budget, for its patch stage; the image stage gets the rest
PREDICTIONS_NAME = "predictions.csv"


@dataclass(frozen=True)
class ZooConfig:
    """Settings of :func:`build_zoo` (the ``python -m hct zoo`` options and ``configs/zoo.json``).

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
    models: tuple[str, ...] = tuple(list_models())
    time_budget_s: float | None = None
    total_budget_s: float | None = None
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


def _log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def ensure_phantom(zoo: ZooConfig) -> Path:
    """The phantom's manifest, generating the benchmark first when it is absent."""
    manifest = Path(zoo.phantom_dir) / MANIFEST_NAME
    if not manifest.is_file():
        size = parse_size(zoo.image_size)
        started = time.perf_counter()
        records = generate_phantom(zoo.splits, zoo.phantom_dir, size=size, seed=zoo.seed, workers=zoo.workers,
                                   compression=zoo.compression)
        seconds = time.perf_counter() - started
        _log(f"phantom: {len(records)} images at {size[0]}x{size[1]} in {seconds:.0f} s "
             f"({1000 * seconds / len(records):.0f} s per 1,000)")
    return manifest


def build_zoo(zoo: ZooConfig, progress: bool = True) -> list[dict]:
    """Train, evaluate and save every model of ``zoo.models``; returns one summary dict per model."""
    run_started = time.perf_counter()
    size = parse_size(zoo.image_size)
    manifest = ensure_phantom(zoo)
    records = read_manifest(manifest)
    started = time.perf_counter()
    device = _stage_config(zoo.models[0], zoo, manifest, "image").resolved_device()
    bank = build_bank(records, size, workers=zoo.workers).to(device)  # moved once, shared by every stage
    _log(f"phantom bank {tuple(bank.images.shape)} on {device} ready in {time.perf_counter() - started:.1f} s")
    if len(set(bank.labels[bank.indices("test")].tolist())) < 2:
        raise ConfigError(f"The phantom's test split in {manifest} lacks a class; generate a larger one.")
    counts = {s: bank.splits.count(s) for s in ("train", "val", "test")}
    data_text = (f"HCT phantom benchmark (hct.data.generate_phantom, seed {zoo.seed}): {len(records)} images at "
                 f"{size[0]}x{size[1]}, patient-level splits {counts}")
    out = Path(zoo.out)
    out.mkdir(parents=True, exist_ok=True)
    summaries, tables = [], []
    for index, name in enumerate(zoo.models):
        budget = zoo.time_budget_s
        if zoo.total_budget_s is not None:
            share = (zoo.total_budget_s - (time.perf_counter() - run_started)) / (len(zoo.models) - index)
            budget = max(min(share, budget or share), 10.0)
        try:
            summary, table = train_model(name, zoo, bank, records, manifest, data_text, budget, progress)
        except (HCTError, RuntimeError) as err:  # one model's failure (e.g. out of memory) spares the others
            summary, table = {"model": name, "error": f"{type(err).__name__}: {err}"}, None
        summaries.append(summary)
        tables += [table] if table is not None else []
        _log(json.dumps(summary))
    if tables:
        write_predictions(pd.concat(tables, ignore_index=True), out / PREDICTIONS_NAME)
    return summaries


def _stage_config(name: str, zoo: ZooConfig, manifest: Path, stage: str, **extra) -> TrainConfig:
    size = parse_size(zoo.image_size)
    runs = Path(zoo.runs_dir) if zoo.runs_dir else Path(zoo.phantom_dir) / "runs"
    patch = stage == "patch"
    return TrainConfig(
        manifest=str(manifest), model=name, stage=stage, input_size=list(size), patch_size=zoo.patch_size,
        micro_batch=zoo.micro_batch, optimizer=zoo.optimizer, seed=zoo.seed, device=zoo.device, log_every=5,
        lr=zoo.lr_patch if patch else zoo.lr_image, batch_size=zoo.batch_patch if patch else zoo.batch_image,
        epochs=zoo.epochs_patch if patch else zoo.epochs_image, out_dir=str(runs / name / stage), **extra)


def train_model(name: str, zoo: ZooConfig, bank: ImageBank, records: list, manifest: Path, data_text: str,
                budget: float | None, progress: bool = True) -> tuple[dict, pd.DataFrame]:
    """Both stages of one model within ``budget`` seconds, its checkpoint in ``zoo.out`` and its
    test predictions."""
    started = time.perf_counter()
    patch_cfg = _stage_config(name, zoo, manifest, "patch", time_budget_s=budget * PATCH_SHARE if budget else None)
    patch = train(patch_cfg, bank=bank, progress=progress)
    patch_model, _ = load_checkpoint(patch.best_checkpoint, device=patch_cfg.resolved_device())
    patch_auc = patch_test_auc(patch_model, bank, zoo.patch_size, zoo.seed, zoo.batch_patch)
    left = budget - (time.perf_counter() - started) if budget else None
    image_cfg = _stage_config(name, zoo, manifest, "image", init_checkpoint=str(patch.best_checkpoint),
                              time_budget_s=max(left, 1.0) if left is not None else None)
    image = train(image_cfg, bank=bank, progress=progress)
    device = image_cfg.resolved_device()
    best, card = load_checkpoint(image.best_checkpoint, device=device)
    path = Path(zoo.out) / name
    total_s = round(time.perf_counter() - started, 1)
    save_checkpoint(best, path, dtype=torch.float16, input_size=tuple(card.input_size), stage="image",
                    training_data=data_text, preprocessing=preprocessing_info("canonical", True),
                    training=_training_record(zoo, (patch, patch_cfg), (image, image_cfg), total_s, device))
    shipped, card = load_checkpoint(path, device=device)  # evaluate the weights as shipped (float16)
    table = test_predictions(shipped, bank, records, card.weights_sha256, zoo.batch_image)
    test = table[table["label"] >= 0]
    result = bootstrap_auc(test["label"].to_numpy(), test["probability"].to_numpy(), n_boot=10_000, seed=zoo.seed)
    card.metrics = {"test_auc": result.auc, "test_auc_low": result.low, "test_auc_high": result.high,
                    "test_n_pos": result.n_pos, "test_n_neg": result.n_neg, "val_auc": image.best_val_auc,
                    "patch_test_auc": patch_auc.auc, "patch_test_auc_low": patch_auc.low,
                    "patch_test_auc_high": patch_auc.high, "patch_val_auc": patch.best_val_auc}
    write_card(card, path)
    lines = _stage_lines(patch.metrics_path, "patch") + _stage_lines(image.metrics_path, "image")
    path.with_suffix(".metrics.jsonl").write_text("\n".join(lines) + "\n")
    summary = {"model": name, "test_auc": round(result.auc, 4), "ci95": [round(result.low, 4), round(result.high, 4)],
               "patch_test_auc": round(patch_auc.auc, 4), "patch_val_auc": patch.best_val_auc,
               "image_val_auc": image.best_val_auc, "time_s": total_s, "checkpoint": str(path.with_suffix(".safetensors"))}
    return summary, table


def _training_record(zoo: ZooConfig, patch: tuple[TrainResult, TrainConfig], image: tuple[TrainResult, TrainConfig],
                     total_s: float, device: torch.device) -> dict:
    stages = {}
    for stage, (run, cfg) in (("patch", patch), ("image", image)):
        size = [zoo.patch_size] * 2 if stage == "patch" else list(cfg.input_size)
        stages[stage] = {"epochs_completed": run.epochs_completed, "epochs_planned": cfg.epochs, "steps": run.steps,
                         "time_s": run.time_s, "best_val_auc": run.best_val_auc, "input_size": size,
                         "stopped_by_time_budget": run.stopped_by_time_budget, "lr": cfg.resolved_lr,
                         "batch_size": cfg.resolved_batch}
    return {"stages": stages, "time_s": total_s, "machine": describe_device(device), "optimizer": zoo.optimizer,
            "seed": zoo.seed, "command": "python -m hct zoo", "recipe": "paper: patches then images, Adam, cosine "
            "decay, cross entropy, flips and Gaussian noise; epochs, learning rates and time scaled to the phantom",
            "zoo": zoo.to_dict()}


def patch_test_auc(model: torch.nn.Module, bank: ImageBank, patch_size: int, seed: int, batch: int):
    """AUC [95% CI] of a patch model on the test split's patches: positives centred on malignant
    boxes, negatives on breast tissue of non-malignant images (one patch per image, seeded)."""
    items = bank.patch_indices("test")
    generator = torch.Generator().manual_seed(random_key(seed, -1, 1))  # not the validation draw (seed, -1)
    centres = bank.patch_centres(items, generator, jitter=0)
    on_cuda = next(model.parameters()).is_cuda
    scores, _ = predict_bank(model, bank, items, batch, centres=centres, patch_size=patch_size, bf16=on_cuda,
                             channels_last=on_cuda)
    labels = bank.labels[items.to(bank.labels.device)].cpu().numpy()
    return bootstrap_auc(labels, scores.numpy(), n_boot=10_000, seed=seed)


def test_predictions(model: torch.nn.Module, bank: ImageBank, records: list, checkpoint_sha256: str,
                     batch: int) -> pd.DataFrame:
    """The predictions table (as ``python -m hct predict`` writes it) of the bank's test split."""
    items = bank.indices("test").tolist()
    device = next(model.parameters()).device

    def batches():
        for start in range(0, len(items), batch):
            chunk = items[start:start + batch]
            yield bank.images[torch.tensor(chunk, device=bank.images.device)].float(), [records[i] for i in chunk]

    return predict_batches(model, batches(), device=str(device), model_name=model.name,
                           checkpoint_sha256=checkpoint_sha256, total=len(items))


def _stage_lines(path: Path, stage: str) -> list[str]:
    return [json.dumps({"stage": stage, **json.loads(line)}) for line in path.read_text().splitlines() if line.strip()]
