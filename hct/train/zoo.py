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

import json
import logging
import time
from pathlib import Path

import pandas as pd
import torch

from hct.data import generate_phantom, parse_size, preprocessing_info, read_manifest
from hct.data.sets.manifest import MANIFEST_NAME
from hct.errors import ConfigError, HCTError
from hct.eval import bootstrap_auc, predict_batches, write_predictions
from hct.io import atomic_write
from hct.models.card import write_card
from hct.models.checkpoints import load_model, save_checkpoint
from hct.models.ref import ref_of
from hct.runtime.devices import describe_device
from hct.train.config import TrainConfig
from hct.train.data import ImageBank, build_bank, random_key
from hct.train.loop import TrainResult, predict_bank, train
from hct.train.zoo_config import ZooConfig

log = logging.getLogger(__name__)
PATCH_SHARE = 1 / 3  # of a model's time budget, for its patch stage; the image stage gets the rest
PREDICTIONS_NAME = "predictions.csv"


def ensure_phantom(zoo: ZooConfig) -> Path:
    """The phantom's manifest, generating the benchmark first when it is absent."""
    manifest = Path(zoo.phantom_dir) / MANIFEST_NAME
    if not manifest.is_file():
        size = parse_size(zoo.image_size)
        started = time.perf_counter()
        records = generate_phantom(
            zoo.splits, zoo.phantom_dir, size=size, seed=zoo.seed, workers=zoo.workers, compression=zoo.compression
        )
        seconds = time.perf_counter() - started
        log.info(
            f"phantom: {len(records)} images at {size[0]}x{size[1]} in {seconds:.0f} s "
            f"({1000 * seconds / len(records):.0f} s per 1,000)"
        )
    return manifest


def _bank(records: list, zoo: ZooConfig, device: torch.device, what: str) -> ImageBank:
    started = time.perf_counter()
    bank = build_bank(records, parse_size(zoo.image_size), workers=zoo.workers).to(device)  # moved once
    log.info(f"{what} bank {tuple(bank.images.shape)} on {device} ready in {time.perf_counter() - started:.1f} s")
    return bank


def build_zoo(zoo: ZooConfig, progress: bool = True) -> list[dict]:
    """Train every model of ``zoo.models`` on the phantom's train and validation splits, then evaluate
    them on its test split; returns one summary dict per model. The test images are decoded only
    after training, so the two banks are never in memory together."""
    run_started = time.perf_counter()
    size = parse_size(zoo.image_size)
    manifest = ensure_phantom(zoo)
    records = read_manifest(manifest)
    test_records = [r for r in records if r.split == "test" and r.label >= 0]
    if len({r.label for r in test_records}) < 2:
        raise ConfigError(f"The phantom's test split in {manifest} lacks a class; generate a larger one.")
    device = _stage_config(zoo.models[0], zoo, manifest, "image").resolved_device()
    counts = {s: sum(r.split == s for r in records) for s in ("train", "val", "test")}
    data_text = (
        f"HCT phantom benchmark (hct.data.generate_phantom, seed {zoo.seed}): {len(records)} images at "
        f"{size[0]}x{size[1]}, patient-level splits {counts}"
    )
    bank = _bank([r for r in records if r.split in ("train", "val")], zoo, device, "train/val")
    trained = {}
    for index, name in enumerate(zoo.models):
        budget = zoo.time_budget_s
        if zoo.total_budget_s is not None:
            share = (zoo.total_budget_s - (time.perf_counter() - run_started)) / (len(zoo.models) - index)
            budget = max(min(share, budget or share), 10.0)
        try:
            trained[name] = train_model(name, zoo, bank, manifest, data_text, budget, progress)
        except (HCTError, RuntimeError) as err:  # one model's failure (e.g. out of memory) spares the others
            trained[name] = {"model": name, "error": f"{type(err).__name__}: {err}"}
    del bank
    if device.type == "cuda":
        torch.cuda.empty_cache()
    test_bank = _bank(test_records, zoo, device, "test")
    summaries, tables = [], []
    for run in trained.values():
        summary, table = (run, None) if "error" in run else evaluate_model(run, zoo, test_bank, test_records)
        summaries.append(summary)
        tables += [table] if table is not None else []
        log.info(json.dumps(summary))
    if tables:
        write_predictions(pd.concat(tables, ignore_index=True), Path(zoo.out) / PREDICTIONS_NAME)
    return summaries


def _stage_config(name: str, zoo: ZooConfig, manifest: Path, stage: str, **extra) -> TrainConfig:
    size = parse_size(zoo.image_size)
    runs = Path(zoo.runs_dir) if zoo.runs_dir else Path(zoo.phantom_dir) / "runs"
    patch = stage == "patch"
    return TrainConfig(
        manifest=str(manifest),
        model=name,
        stage=stage,
        input_size=list(size),
        patch_size=zoo.patch_size,
        micro_batch=zoo.micro_batch,
        optimizer=zoo.optimizer,
        seed=zoo.seed,
        device=zoo.device,
        log_every=5,
        lr=zoo.lr_patch if patch else zoo.lr_image,
        batch_size=zoo.batch_patch if patch else zoo.batch_image,
        epochs=zoo.epochs_patch if patch else zoo.epochs_image,
        out_dir=str(runs / name / stage),
        **extra,
    )


def train_model(
    name: str,
    zoo: ZooConfig,
    bank: ImageBank,
    manifest: Path,
    data_text: str,
    budget: float | None,
    progress: bool = True,
) -> dict:
    """Both stages of one model within ``budget`` seconds; its checkpoint (float16) in ``zoo.out``.
    Returns what :func:`evaluate_model` needs."""
    started = time.perf_counter()
    patch_cfg = _stage_config(name, zoo, manifest, "patch", time_budget_s=budget * PATCH_SHARE if budget else None)
    patch = train(patch_cfg, bank=bank, progress=progress)
    left = budget - (time.perf_counter() - started) if budget else None
    image_cfg = _stage_config(
        name,
        zoo,
        manifest,
        "image",
        init_checkpoint=str(patch.best_checkpoint),
        time_budget_s=max(left, 1.0) if left is not None else None,
    )
    image = train(image_cfg, bank=bank, progress=progress)
    device = image_cfg.resolved_device()
    best, card = load_model(str(image.best_checkpoint), device=device)
    path = Path(zoo.out) / name
    total_s = round(time.perf_counter() - started, 1)
    save_checkpoint(
        best,
        path,
        dtype=torch.float16,
        input_size=tuple(card.input_size),
        stage="image",
        training_data=data_text,
        preprocessing=preprocessing_info("canonical", True),
        training=_training_record(zoo, (patch, patch_cfg), (image, image_cfg), total_s, device),
    )
    lines = _stage_lines(patch.metrics_path, "patch") + _stage_lines(image.metrics_path, "image")
    atomic_write(path.with_suffix(".metrics.jsonl"), "\n".join(lines) + "\n")
    return {
        "model": name,
        "path": path,
        "patch_checkpoint": patch.best_checkpoint,
        "patch_val_auc": patch.best_val_auc,
        "image_val_auc": image.best_val_auc,
        "time_s": total_s,
        "device": device,
    }


def evaluate_model(run: dict, zoo: ZooConfig, bank: ImageBank, records: list) -> tuple[dict, pd.DataFrame]:
    """Test AUCs of a trained model (the image model as shipped in float16, and its patch model),
    written into its card; its summary and its test predictions."""
    path, device = run["path"], run["device"]
    patch_model, _ = load_model(str(run["patch_checkpoint"]), device=device)
    patch_auc = patch_test_auc(patch_model, bank, zoo.patch_size, zoo.seed, zoo.batch_patch)
    shipped, card = load_model(str(path), device=device)
    table = test_predictions(shipped, bank, records, zoo.batch_image)
    result = bootstrap_auc(table["label"].to_numpy(), table["probability"].to_numpy(), n_boot=10_000, seed=zoo.seed)
    card.metrics = {
        "test_auc": result.auc,
        "test_auc_low": result.low,
        "test_auc_high": result.high,
        "test_n_pos": result.n_pos,
        "test_n_neg": result.n_neg,
        "val_auc": run["image_val_auc"],
        "patch_test_auc": patch_auc.auc,
        "patch_test_auc_low": patch_auc.low,
        "patch_test_auc_high": patch_auc.high,
        "patch_val_auc": run["patch_val_auc"],
    }
    write_card(card, path)
    summary = {
        "model": run["model"],
        "test_auc": round(result.auc, 4),
        "ci95": [round(result.low, 4), round(result.high, 4)],
        "patch_test_auc": round(patch_auc.auc, 4),
        "patch_val_auc": run["patch_val_auc"],
        "image_val_auc": run["image_val_auc"],
        "time_s": run["time_s"],
        "checkpoint": str(path.with_suffix(".safetensors")),
    }
    return summary, table


def _training_record(
    zoo: ZooConfig,
    patch: tuple[TrainResult, TrainConfig],
    image: tuple[TrainResult, TrainConfig],
    total_s: float,
    device: torch.device,
) -> dict:
    stages = {}
    for stage, (run, cfg) in (("patch", patch), ("image", image)):
        size = [zoo.patch_size] * 2 if stage == "patch" else list(cfg.input_size)
        stages[stage] = {
            "epochs_completed": run.epochs_completed,
            "epochs_planned": cfg.epochs,
            "steps": run.steps,
            "time_s": run.time_s,
            "best_val_auc": run.best_val_auc,
            "input_size": size,
            "stopped_by_time_budget": run.stopped_by_time_budget,
            "lr": cfg.resolved_lr,
            "batch_size": cfg.resolved_batch,
        }
    return {
        "stages": stages,
        "time_s": total_s,
        "machine": describe_device(device),
        "optimizer": zoo.optimizer,
        "seed": zoo.seed,
        "command": "python -m hct zoo",
        "recipe": "paper: patches then images, Adam, cosine "
        "decay, cross entropy, flips and Gaussian noise; epochs, learning rates and time scaled to the phantom",
        "zoo": zoo.to_dict(),
    }


def patch_test_auc(model: torch.nn.Module, bank: ImageBank, patch_size: int, seed: int, batch: int):
    """AUC [95% CI] of a patch model on the test split's patches: positives centred on malignant
    boxes, negatives on breast tissue of non-malignant images (one patch per image, seeded)."""
    items = bank.patch_indices("test")
    generator = torch.Generator().manual_seed(random_key(seed, -1, 1))  # not the validation draw (seed, -1)
    centres = bank.patch_centres(items, generator, jitter=0)
    on_cuda = next(model.parameters()).is_cuda
    scores, _ = predict_bank(
        model, bank, items, batch, centres=centres, patch_size=patch_size, bf16=on_cuda, channels_last=on_cuda
    )
    labels = bank.labels[items.to(bank.labels.device)].cpu().numpy()
    return bootstrap_auc(labels, scores.numpy(), n_boot=10_000, seed=seed)


def test_predictions(model: torch.nn.Module, bank: ImageBank, records: list, batch: int) -> pd.DataFrame:
    """The predictions table (as ``python -m hct predict`` writes it) of the bank's test split, the model
    named by its architecture, with its checkpoint's sha256 (its ref's)."""
    items = bank.indices("test").tolist()
    device = next(model.parameters()).device

    def batches():
        for start in range(0, len(items), batch):
            chunk = items[start : start + batch]
            yield bank.images[torch.tensor(chunk, device=bank.images.device)].float(), [records[i] for i in chunk]

    return predict_batches(model, batches(), device=str(device), ref=ref_of(model, model.name), total=len(items))


def _stage_lines(path: Path, stage: str) -> list[str]:
    return [json.dumps({"stage": stage, **json.loads(line)}) for line in path.read_text().splitlines() if line.strip()]
