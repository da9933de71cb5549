"""The training loop: cross entropy, Adam or ASAM, cosine decay per step, resumable at any moment.

A run's folder holds ``config.json``, ``metrics.jsonl`` (one JSON line per logging step and per
epoch, flushed as written), ``last`` and ``best`` checkpoints (safetensors + model card),
``resume.pt`` (the resume state, written atomically after each epoch and every
``checkpoint_every`` steps) and ``result.json`` once finished. Running the same config again
resumes from ``resume.pt``; every random draw is keyed by (seed, epoch, step, micro-batch), so
the resume state needs no RNG states and a resumed run ends with the same weights as an unbroken one.
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import time
from dataclasses import dataclass
from pathlib import Path

import torch
import torch.nn.functional as F
from sklearn.metrics import roc_auc_score
from torch import nn
from tqdm import tqdm

from hct.checkpoints import load_checkpoint, save_checkpoint
from hct.data import augment, preprocessing_info
from hct.devices import describe_device
from hct.errors import ConfigError
from hct.models import HighResNet, create_model
from hct.train.asam import ASAM, frozen_bn_stats
from hct.train.config import TrainConfig, load_config
from hct.train.data import ImageBank, load_bank, random_key
from hct.train.distributed import DistContext, barrier, broadcast_int, setup, teardown

CONFIG_NAME, METRICS_NAME, RESUME_NAME, RESULT_NAME = "config.json", "metrics.jsonl", "resume.pt", "result.json"
BEST_NAME, LAST_NAME = "best", "last"
# Settings that may change between a run and its resumption without changing its result.
RESUMABLE_CHANGES = {"workers", "cache_dir", "log_every", "checkpoint_every", "time_budget_s"}


@dataclass(frozen=True)
class TrainResult:
    """Where a finished run put its outputs, and how it went."""

    out_dir: Path
    best_checkpoint: Path
    last_checkpoint: Path
    metrics_path: Path
    best_val_auc: float | None
    epochs_completed: int
    steps: int
    time_s: float
    stopped_by_time_budget: bool

    def to_dict(self) -> dict:
        return {k: (str(v) if isinstance(v, Path) else v) for k, v in self.__dict__.items()}

    @classmethod
    def from_dict(cls, data: dict) -> "TrainResult":
        paths = {"out_dir", "best_checkpoint", "last_checkpoint", "metrics_path"}
        return cls(**{k: (Path(v) if k in paths else v) for k, v in data.items()})


def cosine_lr(step: int, total_steps: int, base_lr: float) -> float:
    """Cosine decay from ``base_lr`` at step 0 towards 0 at ``total_steps``."""
    return base_lr * 0.5 * (1 + math.cos(math.pi * min(step, total_steps) / max(total_steps, 1)))


def epoch_order(items: torch.Tensor, labels: torch.Tensor, batch: int, seed: int, epoch: int,
                balance: bool) -> tuple[torch.Tensor, torch.Generator]:
    """The epoch's sample order (``steps * batch`` item ids) and the generator, seeded by (seed, epoch).

    One step per full batch (at least one). Balanced: classes drawn equally often, with replacement.
    """
    generator = torch.Generator().manual_seed(random_key(seed, epoch))
    steps = max(1, len(items) // batch)
    if balance:
        item_labels = labels[items].cpu()
        counts = torch.bincount(item_labels, minlength=2).float()
        weights = 1.0 / counts[item_labels]
        positions = torch.multinomial(weights, steps * batch, replacement=True, generator=generator)
    else:
        rounds = -(-steps * batch // len(items))
        positions = torch.cat([torch.randperm(len(items), generator=generator) for _ in range(rounds)])
    return items.cpu()[positions[: steps * batch]], generator


def _inputs(bank: ImageBank, items: torch.Tensor, centres: torch.Tensor | None, patch_size: int) -> torch.Tensor:
    if centres is None:
        return bank.images[items.to(bank.images.device)].float()
    return bank.crop(items, centres, patch_size)


@torch.no_grad()
def predict_bank(model: nn.Module, bank: ImageBank, items: torch.Tensor, batch: int, *,
                 centres: torch.Tensor | None = None, patch_size: int = 0, bf16: bool = False,
                 channels_last: bool = False) -> tuple[torch.Tensor, float]:
    """Malignancy probabilities (CPU float tensor) for bank ``items`` (patches at ``centres`` if
    given) in eval mode, and the mean cross entropy against their labels."""
    was_training = model.training
    model.eval()
    device = next(model.parameters()).device
    scores, loss_sum = [], 0.0
    for start in range(0, len(items), batch):
        chunk = items[start:start + batch]
        x = _inputs(bank, chunk, None if centres is None else centres[start:start + batch], patch_size).to(device)
        if channels_last:
            x = x.contiguous(memory_format=torch.channels_last)
        with torch.autocast(device.type, dtype=torch.bfloat16, enabled=bf16):
            logits = model(x).float()
        labels = bank.labels[chunk.to(bank.labels.device)].to(device)
        loss_sum += float(F.cross_entropy(logits, labels, reduction="sum"))
        scores.append(logits.softmax(dim=1)[:, 1].cpu())
    model.train(was_training)
    return torch.cat(scores) if scores else torch.empty(0), loss_sum / max(len(items), 1)


def _auc(labels: torch.Tensor, scores: torch.Tensor) -> float | None:
    labels = labels.cpu().numpy()
    return float(roc_auc_score(labels, scores.numpy())) if len(set(labels.tolist())) == 2 else None


def read_metrics(path: str | Path) -> list[dict]:
    """The lines of a ``metrics.jsonl`` so far ([] when absent); stops at a line still being written."""
    path = Path(path)
    if not path.is_file():
        return []
    entries = []
    for line in path.read_text().splitlines():
        try:
            entries.append(json.loads(line))
        except json.JSONDecodeError:
            break
    return entries


class _Metrics:
    """``metrics.jsonl``: appended and flushed one line at a time (rank 0 only)."""

    def __init__(self, path: Path, enabled: bool) -> None:
        self.path, self.enabled = path, enabled

    def truncate(self, step: int, epoch: int) -> None:
        """Drop lines written after the resume point (step lines past ``step``, epoch lines past ``epoch``)."""
        if not self.enabled or not self.path.is_file():
            return
        kept = [json.dumps(entry) + "\n" for entry in read_metrics(self.path)
                if ("val_auc" in entry and entry["epoch"] <= epoch) or ("loss" in entry and entry["step"] <= step)]
        partial = self.path.with_name(f".{self.path.name}.tmp")
        partial.write_text("".join(kept))
        os.replace(partial, self.path)

    def write(self, **entry) -> None:
        if self.enabled:
            with open(self.path, "a") as handle:
                handle.write(json.dumps(entry) + "\n")
                handle.flush()


def _atomic_torch_save(state: dict, path: Path) -> None:
    partial = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    torch.save(state, partial)
    os.replace(partial, path)


def _check_resumable(out_dir: Path, config: TrainConfig) -> None:
    saved_path = out_dir / CONFIG_NAME
    if not saved_path.is_file():
        return
    saved = json.loads(saved_path.read_text())
    changed = sorted(k for k in set(saved) | set(config.to_dict())
                     if k not in RESUMABLE_CHANGES and saved.get(k) != config.to_dict().get(k))
    if changed:
        raise ConfigError(f"{out_dir} holds a run with another config (differs in {changed}); "
                          "choose another out_dir or delete that folder to start afresh.")


def _build_model(config: TrainConfig) -> HighResNet:
    torch.manual_seed(random_key(config.seed, -2))  # initial weights (and Performer projections) by seed
    model = create_model(config.model, **config.overrides)
    if config.init_checkpoint:
        source, _ = load_checkpoint(config.init_checkpoint, architecture=config.model)
        model.load_state_dict(source.state_dict())
    return model


def train(config: TrainConfig | dict | str | Path, bank: ImageBank | None = None,
          progress: bool = True) -> TrainResult:
    """Train as ``config`` says (a :class:`TrainConfig`, a dict or a config file) and return the result.

    Resumes from ``out_dir/resume.pt`` when present; a finished run returns its result at once.
    Under ``torchrun`` each process calls this; only rank 0 writes. ``bank`` reuses data already in
    memory (it must be the bank of ``config.manifest`` at ``config.input_size``).
    """
    if isinstance(config, (str, Path)):
        config = load_config(config)
    elif isinstance(config, dict):
        config = TrainConfig.from_dict(config)
    ctx = setup(config.resolved_device())
    try:
        return _train(config, ctx, bank, progress)
    finally:
        teardown(ctx)


def _train(config: TrainConfig, ctx: DistContext, bank: ImageBank | None, progress: bool) -> TrainResult:
    out_dir = Path(config.out_dir)
    if ctx.is_main:
        out_dir.mkdir(parents=True, exist_ok=True)
        _check_resumable(out_dir, config)
        (out_dir / CONFIG_NAME).write_text(json.dumps(config.to_dict(), indent=2))
    if (out_dir / RESULT_NAME).is_file():
        return TrainResult.from_dict(json.loads((out_dir / RESULT_NAME).read_text()))

    device = ctx.device
    on_cuda = device.type == "cuda"
    bf16 = on_cuda if config.bf16 is None else config.bf16 and on_cuda
    channels_last = on_cuda if config.channels_last is None else config.channels_last
    if on_cuda:
        torch.backends.cudnn.benchmark = True
    if bank is None:
        if not ctx.is_main:
            barrier(ctx)  # rank 0 builds the cache first
        bank = load_bank(config.manifest, config.input_size, config.cache_dir, config.workers, config.clear_background)
        if ctx.is_main:
            barrier(ctx)
    bank = bank.to(device)

    patches = config.stage == "patch"
    train_items = bank.patch_indices("train") if patches else bank.indices("train")
    val_items = bank.patch_indices("val") if patches else bank.indices("val")
    if len(train_items) == 0 or len(set(bank.labels[train_items.to(bank.labels.device)].tolist())) < 2:
        raise ConfigError(f"The train split of {config.manifest} needs images of both labels "
                          f"({len(train_items)} usable images found).")
    val_centres = (bank.patch_centres(val_items, torch.Generator().manual_seed(random_key(config.seed, -1)),
                                      config.patch_size // 8) if patches else None)

    batch, micro = config.resolved_batch, config.resolved_micro_batch
    micro_count = batch // micro
    if micro_count % ctx.world:
        raise ConfigError(f"batch_size / micro_batch = {micro_count} micro-batches per step must be a multiple "
                          f"of the {ctx.world} processes.")
    steps_per_epoch = max(1, len(train_items) // batch)

    model = _build_model(config).to(device)
    if channels_last:
        model = model.to(memory_format=torch.channels_last)
    if ctx.distributed and on_cuda:
        model = nn.SyncBatchNorm.convert_sync_batchnorm(model)
    module = model
    if ctx.distributed:
        model = nn.parallel.DistributedDataParallel(model, device_ids=[device.index] if on_cuda else None)
    base = torch.optim.Adam(module.parameters(), lr=config.resolved_lr, weight_decay=config.weight_decay)
    optimizer = ASAM(base, config.rho, config.eta) if config.optimizer == "asam" else base

    epochs, epoch, step_in_epoch, global_step = config.epochs, 0, 0, 0
    best_score, best_auc, elapsed_before = [-math.inf, -math.inf], None, 0.0
    metrics = _Metrics(out_dir / METRICS_NAME, ctx.is_main)
    resume_path = out_dir / RESUME_NAME
    if resume_path.is_file():
        state = torch.load(resume_path, map_location=device, weights_only=True)
        module.load_state_dict(state["model"])
        optimizer.load_state_dict(state["optimizer"])
        epochs, epoch, step_in_epoch = state["epochs"], state["epoch"], state["step_in_epoch"]
        global_step, best_score, best_auc = state["global_step"], state["best_score"], state["best_val_auc"]
        elapsed_before = state["elapsed_s"]
        metrics.truncate(global_step, epoch)
    elif ctx.is_main and metrics.path.exists():
        metrics.path.unlink()

    def total_steps() -> int:
        return min(epochs * steps_per_epoch, config.max_steps or math.inf)

    def save_resume() -> None:
        if ctx.is_main:
            _atomic_torch_save({
                "model": module.state_dict(), "optimizer": optimizer.state_dict(), "epochs": epochs,
                "epoch": epoch, "step_in_epoch": step_in_epoch, "global_step": global_step,
                "best_score": best_score, "best_val_auc": best_auc, "elapsed_s": elapsed(),
            }, resume_path)

    started = time.perf_counter()

    def elapsed() -> float:
        return elapsed_before + time.perf_counter() - started

    def card_fields(val_auc: float | None, val_loss: float, stopped: bool) -> dict:
        size = (config.patch_size, config.patch_size) if patches else tuple(config.input_size)
        return dict(
            input_size=size, stage=config.stage,
            training_data=f"{config.manifest} ({len(train_items)} train / {len(val_items)} val "
                          f"{'patch images' if patches else 'images'} at {config.input_size[0]}x{config.input_size[1]})",
            metrics={"val_auc": val_auc, "val_loss": val_loss, "best_val_auc": best_auc},
            preprocessing=preprocessing_info("canonical", config.clear_background),
            training={"config": config.to_dict(), "epochs_completed": epoch, "epochs_planned": config.epochs,
                      "steps": global_step, "time_s": round(elapsed(), 1), "machine": describe_device(device),
                      "processes": ctx.world, "stopped_by_time_budget": stopped},
        )

    labels_all = bank.labels
    bar = tqdm(total=total_steps(), initial=global_step, disable=not (progress and ctx.is_main),
               desc=f"{config.model} {config.stage}", unit="step", mininterval=1.0)
    model.train()
    stopped = False
    epoch_started = time.perf_counter()
    first_epoch_here = True
    while epoch < epochs and global_step < total_steps():
        order, generator = epoch_order(train_items, labels_all, batch, config.seed, epoch, config.balance_classes)
        centres = bank.patch_centres(order, generator, config.patch_size // 8) if patches else None
        running = torch.zeros((), device=device)
        logged_steps = 0
        while step_in_epoch < steps_per_epoch and global_step < total_steps():
            lr = cosine_lr(global_step, total_steps(), config.resolved_lr)
            for group in optimizer.param_groups:
                group["lr"] = lr
            mine = ctx.shard(range(micro_count))

            def accumulate() -> torch.Tensor:
                loss_sum = torch.zeros((), device=device)
                for n, j in enumerate(mine):
                    rows = slice(step_in_epoch * batch + j * micro, step_in_epoch * batch + (j + 1) * micro)
                    key = random_key(config.seed, epoch, global_step, j)
                    x = _inputs(bank, order[rows], None if centres is None else centres[rows], config.patch_size)
                    x = augment(x.to(device), key, config.flips, config.noise_std)
                    if channels_last:
                        x = x.contiguous(memory_format=torch.channels_last)
                    y = labels_all[order[rows].to(labels_all.device)].to(device)
                    torch.manual_seed(key)  # dropout masks keyed like the data
                    sync = contextlib.nullcontext() if (n == len(mine) - 1 or not ctx.distributed) else model.no_sync()
                    with sync:
                        with torch.autocast(device.type, dtype=torch.bfloat16, enabled=bf16):
                            logits = model(x)
                        loss = F.cross_entropy(logits.float(), y, reduction="sum")
                        (loss * (ctx.world / batch)).backward()
                    loss_sum += loss.detach()
                return loss_sum

            loss_sum = accumulate()
            if isinstance(optimizer, ASAM):
                optimizer.first_step()
                optimizer.zero_grad()
                with frozen_bn_stats(module):
                    accumulate()
                optimizer.second_step()
            else:
                optimizer.step()
            optimizer.zero_grad(set_to_none=True)
            running += loss_sum
            logged_steps += 1
            global_step += 1
            step_in_epoch += 1
            bar.update(1)
            if global_step % config.log_every == 0 or step_in_epoch == steps_per_epoch:
                if ctx.distributed:
                    torch.distributed.all_reduce(running)
                mean_loss = float(running) / (batch * logged_steps)
                metrics.write(step=global_step, epoch=epoch + 1, loss=mean_loss, lr=lr, time=round(elapsed(), 3))
                bar.set_postfix(loss=f"{mean_loss:.4f}")
                running.zero_()
                logged_steps = 0
            if config.checkpoint_every and global_step % config.checkpoint_every == 0 and step_in_epoch < steps_per_epoch:
                save_resume()

        epoch += 1
        step_in_epoch = 0
        val_auc, val_loss = None, float("nan")
        if ctx.is_main:
            scores, val_loss = predict_bank(module, bank, val_items, micro, centres=val_centres,
                                            patch_size=config.patch_size, bf16=bf16, channels_last=channels_last)
            val_auc = _auc(labels_all[val_items.to(labels_all.device)], scores) if len(val_items) else None
            metrics.write(epoch=epoch, step=global_step, val_auc=val_auc, val_loss=val_loss, time=round(elapsed(), 3))
            score = [val_auc if val_auc is not None else -math.inf, -val_loss if val_loss == val_loss else -math.inf]
            if score > best_score or not (out_dir / f"{BEST_NAME}.safetensors").is_file():
                best_score, best_auc = score, val_auc
                save_checkpoint(module, out_dir / BEST_NAME, **card_fields(val_auc, val_loss, stopped))
        if config.time_budget_s is not None:
            budget_left = config.time_budget_s - elapsed()
            if first_epoch_here:  # cut the plan to the epochs that fit, judged by this epoch's duration
                per_epoch = time.perf_counter() - epoch_started
                fit = epoch + max(0, int(budget_left // max(per_epoch, 1e-9)))
                epochs = broadcast_int(ctx, min(epochs, max(fit, epoch)))
            elif broadcast_int(ctx, int(budget_left <= 0)):
                epochs = epoch
            stopped = epochs < config.epochs
            bar.total = total_steps()
        first_epoch_here = False
        if ctx.is_main:
            save_checkpoint(module, out_dir / LAST_NAME, **card_fields(val_auc, val_loss, stopped))
        save_resume()
        barrier(ctx)

    bar.close()
    result = TrainResult(
        out_dir=out_dir, best_checkpoint=out_dir / f"{BEST_NAME}.safetensors",
        last_checkpoint=out_dir / f"{LAST_NAME}.safetensors", metrics_path=metrics.path,
        best_val_auc=best_auc, epochs_completed=epoch, steps=global_step, time_s=round(elapsed(), 1),
        stopped_by_time_budget=epochs < config.epochs,
    )
    if ctx.is_main:
        partial = out_dir / f".{RESULT_NAME}.tmp"
        partial.write_text(json.dumps(result.to_dict(), indent=2))
        os.replace(partial, out_dir / RESULT_NAME)
    return result
