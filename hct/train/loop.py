"""The training loop: cross entropy, Adam or ASAM, cosine decay per step, resumable at any moment.

A run's folder holds ``config.json``, ``metrics.jsonl`` (one JSON line per logging step and per
epoch, flushed as written), ``last`` and ``best`` checkpoints (safetensors + model card),
``resume.pt`` (the resume state, written atomically after each epoch and every
``checkpoint_every`` steps) and ``result.json`` once finished. Running the same config again
resumes from ``resume.pt``; every random draw is keyed by (seed, epoch, step, micro-batch), so
the resume state needs no RNG states and a resumed run ends with the same weights as an unbroken one.

Under ``torchrun`` every process holds the whole (in-memory) data set and computes the same global
batch from the epoch's seeded order. Micro-batch ``j`` of a global batch goes to rank ``j mod world``,
and its augmentation and dropout are keyed by ``j``: the ``world`` processes together compute exactly
the gradient a single process computes with the same ``micro_batch`` (up to summation order), step by
step. BatchNorm: on CUDA the model is converted to SyncBatchNorm; on CPU (gloo, where SyncBatchNorm is
unsupported) each micro-batch is normalised with its own statistics, as in the single-process run, and
the running statistics are rank 0's (DDP broadcasts rank 0's buffers at each forward).
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import torch
import torch.nn.functional as F
from sklearn.metrics import roc_auc_score
from torch import nn
from tqdm import tqdm

from hct.data import preprocessing_info
from hct.errors import CheckpointError, ConfigError
from hct.io import atomic_write
from hct.models import HighResNet, create_model
from hct.models.checkpoints import load_model, save_checkpoint
from hct.runtime.devices import describe_device
from hct.runtime.distributed import DistContext, barrier, broadcast_int, process_group
from hct.train.asam import ASAM, frozen_bn_stats
from hct.train.config import TrainConfig, load_config
from hct.train.data import ImageBank, augment, load_bank, random_key

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


def epoch_order(
    items: torch.Tensor, labels: torch.Tensor, batch: int, seed: int, epoch: int, balance: bool
) -> tuple[torch.Tensor, torch.Generator]:
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
def predict_bank(
    model: nn.Module,
    bank: ImageBank,
    items: torch.Tensor,
    batch: int,
    *,
    centres: torch.Tensor | None = None,
    patch_size: int = 0,
    bf16: bool = False,
    channels_last: bool = False,
) -> tuple[torch.Tensor, float]:
    """Malignancy probabilities (CPU float tensor) for bank ``items`` (patches at ``centres`` if
    given) in eval mode, and the mean cross entropy against their labels."""
    was_training = model.training
    model.eval()
    device = next(model.parameters()).device
    scores, loss_sum = [], 0.0
    for start in range(0, len(items), batch):
        chunk = items[start : start + batch]
        x = _inputs(bank, chunk, None if centres is None else centres[start : start + batch], patch_size).to(device)
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
        kept = [
            json.dumps(entry) + "\n"
            for entry in read_metrics(self.path)
            if ("val_auc" in entry and entry["epoch"] <= epoch) or ("loss" in entry and entry["step"] <= step)
        ]
        atomic_write(self.path, "".join(kept))

    def write(self, **entry) -> None:
        if self.enabled:
            with open(self.path, "a") as handle:
                handle.write(json.dumps(entry) + "\n")
                handle.flush()


def _check_resumable(out_dir: Path, config: TrainConfig) -> None:
    saved_path = out_dir / CONFIG_NAME
    if not saved_path.is_file():
        return
    try:
        saved = json.loads(saved_path.read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as err:
        raise ConfigError(
            f"{saved_path} is damaged ({err}); delete {out_dir} to start afresh, or choose another out_dir."
        ) from err
    changed = sorted(
        k
        for k in set(saved) | set(config.to_dict())
        if k not in RESUMABLE_CHANGES and saved.get(k) != config.to_dict().get(k)
    )
    if changed:
        raise ConfigError(
            f"{out_dir} holds a run with another config (differs in {changed}); "
            "choose another out_dir or delete that folder to start afresh."
        )


def _build_model(config: TrainConfig) -> HighResNet:
    torch.manual_seed(random_key(config.seed, -2))  # initial weights (and Performer projections) by seed
    model = create_model(config.model, **config.overrides)
    if config.init_checkpoint:
        source, card = load_model(str(config.init_checkpoint))
        if card is None or card.architecture != config.model:
            held = "no checkpoint (a registry name)" if card is None else f"a {card.architecture} model"
            raise CheckpointError(
                f"init_checkpoint {config.init_checkpoint} holds {held}, not a {config.model} "
                "checkpoint; give the patch model's checkpoint of the same architecture"
            )
        model.load_state_dict(source.state_dict())
    return model


def _silent(phase: str, **fields) -> None:
    """No heartbeat."""


def train(
    config: TrainConfig | dict | str | Path,
    bank: ImageBank | None = None,
    progress: bool = True,
    heartbeat: Callable[..., None] | None = None,
) -> TrainResult:
    """Train as ``config`` says (a :class:`TrainConfig`, a dict or a config file) and return the result.

    Resumes from ``out_dir/resume.pt`` when present; a finished run returns its result at once.
    Under ``torchrun`` each process calls this; only rank 0 writes. ``bank`` reuses data already in
    memory (it must be the bank of ``config.manifest`` at ``config.input_size``). ``heartbeat(phase,
    **fields)`` hears how the run goes (:class:`hct.train.heartbeat.Heartbeat`).
    """
    if isinstance(config, (str, Path)):
        config = load_config(config)
    elif isinstance(config, dict):
        config = TrainConfig.from_dict(config)
    with process_group(config.resolved_device()) as ctx:
        return _train(config, ctx, bank, progress, heartbeat or _silent)


@dataclass
class RunState:
    """Where a run stands: what ``resume.pt`` holds besides the weights and the optimiser."""

    epochs: int
    epoch: int = 0
    step_in_epoch: int = 0
    global_step: int = 0
    best_score: list = field(default_factory=lambda: [-math.inf, -math.inf])
    best_val_auc: float | None = None
    elapsed_s: float = 0.0


@dataclass
class _Run:
    """One training run's fixed parts (model, optimiser, data, schedule) and its :class:`RunState`."""

    config: TrainConfig
    ctx: DistContext
    bank: ImageBank
    model: nn.Module  # wrapped in DDP under torchrun
    module: HighResNet
    optimizer: torch.optim.Optimizer | ASAM
    train_items: torch.Tensor
    val_items: torch.Tensor
    val_centres: torch.Tensor | None
    steps_per_epoch: int
    bf16: bool
    channels_last: bool
    metrics: _Metrics
    state: RunState
    started: float = field(default_factory=time.perf_counter)
    beat: Callable[..., None] = _silent  # the process's heartbeat

    @property
    def patches(self) -> bool:
        return self.config.stage == "patch"

    def elapsed(self) -> float:
        return self.state.elapsed_s + time.perf_counter() - self.started

    def total_steps(self) -> int:
        return min(self.state.epochs * self.steps_per_epoch, self.config.max_steps or math.inf)

    def save_resume(self) -> None:
        if self.ctx.is_main:
            state = {**dataclasses.asdict(self.state), "elapsed_s": self.elapsed()}
            resume = {"model": self.module.state_dict(), "optimizer": self.optimizer.state_dict(), **state}
            atomic_write(self.path(RESUME_NAME), lambda tmp: torch.save(resume, tmp))

    def path(self, name: str) -> Path:
        return Path(self.config.out_dir) / name


def _setup_run(config: TrainConfig, ctx: DistContext, bank: ImageBank | None) -> _Run:
    device = ctx.device
    on_cuda = device.type == "cuda"
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
        raise ConfigError(
            f"The train split of {config.manifest} needs images of both labels "
            f"({len(train_items)} usable images found)."
        )
    val_centres = (
        bank.patch_centres(
            val_items, torch.Generator().manual_seed(random_key(config.seed, -1)), config.patch_size // 8
        )
        if patches
        else None
    )
    micro_count = config.resolved_batch // config.resolved_micro_batch
    if micro_count % ctx.world:
        raise ConfigError(
            f"batch_size / micro_batch = {micro_count} micro-batches per step must be a multiple "
            f"of the {ctx.world} processes."
        )
    channels_last = on_cuda if config.channels_last is None else config.channels_last
    module = _build_model(config).to(device)
    if channels_last:
        module = module.to(memory_format=torch.channels_last)
    model = nn.SyncBatchNorm.convert_sync_batchnorm(module) if ctx.distributed and on_cuda else module
    module = model
    if ctx.distributed:
        model = nn.parallel.DistributedDataParallel(model, device_ids=[device.index] if on_cuda else None)
    base = torch.optim.Adam(module.parameters(), lr=config.resolved_lr, weight_decay=config.weight_decay)
    optimizer = ASAM(base, config.rho, config.eta) if config.optimizer == "asam" else base
    return _Run(
        config,
        ctx,
        bank,
        model,
        module,
        optimizer,
        train_items,
        val_items,
        val_centres,
        max(1, len(train_items) // config.resolved_batch),
        on_cuda if config.bf16 is None else config.bf16 and on_cuda,
        channels_last,
        _Metrics(Path(config.out_dir) / METRICS_NAME, ctx.is_main),
        RunState(config.epochs),
    )


def _resume(run: _Run) -> None:
    """Continue from ``resume.pt`` when present (else start a fresh metrics file)."""
    path = run.path(RESUME_NAME)
    if path.is_file():
        saved = torch.load(path, map_location=run.ctx.device, weights_only=True)
        run.module.load_state_dict(saved.pop("model"))
        run.optimizer.load_state_dict(saved.pop("optimizer"))
        run.state = RunState(**saved)
        run.metrics.truncate(run.state.global_step, run.state.epoch)
    elif run.ctx.is_main and run.metrics.path.exists():
        run.metrics.path.unlink()


def _accumulate(run: _Run, order: torch.Tensor, centres: torch.Tensor | None) -> torch.Tensor:
    """Forward and backward of this rank's micro-batches of the current step; the summed loss."""
    config, ctx, state, device = run.config, run.ctx, run.state, run.ctx.device
    batch, micro = config.resolved_batch, config.resolved_micro_batch
    mine = ctx.shard(range(batch // micro))
    loss_sum = torch.zeros((), device=device)
    for n, j in enumerate(mine):
        rows = slice(state.step_in_epoch * batch + j * micro, state.step_in_epoch * batch + (j + 1) * micro)
        key = random_key(config.seed, state.epoch, state.global_step, j)
        x = _inputs(run.bank, order[rows], None if centres is None else centres[rows], config.patch_size)
        x = augment(x.to(device), key, config.flips, config.noise_std)
        if run.channels_last:
            x = x.contiguous(memory_format=torch.channels_last)
        y = run.bank.labels[order[rows].to(run.bank.labels.device)].to(device)
        torch.manual_seed(key)  # dropout masks keyed like the data
        sync = contextlib.nullcontext() if (n == len(mine) - 1 or not ctx.distributed) else run.model.no_sync()
        with sync:
            with torch.autocast(device.type, dtype=torch.bfloat16, enabled=run.bf16):
                logits = run.model(x)
            loss = F.cross_entropy(logits.float(), y, reduction="sum")
            (loss * (ctx.world / batch)).backward()
        loss_sum += loss.detach()
    return loss_sum


def _step(run: _Run, order: torch.Tensor, centres: torch.Tensor | None) -> tuple[torch.Tensor, float]:
    """One optimiser step (two for ASAM) at the cosine learning rate; the step's summed loss and lr."""
    lr = cosine_lr(run.state.global_step, run.total_steps(), run.config.resolved_lr)
    for group in run.optimizer.param_groups:
        group["lr"] = lr
    loss_sum = _accumulate(run, order, centres)
    if isinstance(run.optimizer, ASAM):
        run.optimizer.first_step()
        run.optimizer.zero_grad()
        with frozen_bn_stats(run.module):
            _accumulate(run, order, centres)
        run.optimizer.second_step()
    else:
        run.optimizer.step()
    run.optimizer.zero_grad(set_to_none=True)
    return loss_sum, lr


def train_one_epoch(run: _Run, bar: tqdm) -> None:
    """The rest of the current epoch's steps (or until ``max_steps``), logged every ``log_every``."""
    config, state = run.config, run.state
    order, generator = epoch_order(
        run.train_items, run.bank.labels, config.resolved_batch, config.seed, state.epoch, config.balance_classes
    )
    centres = run.bank.patch_centres(order, generator, config.patch_size // 8) if run.patches else None
    running = torch.zeros((), device=run.ctx.device)
    logged_steps = 0
    while state.step_in_epoch < run.steps_per_epoch and state.global_step < run.total_steps():
        loss_sum, lr = _step(run, order, centres)
        running += loss_sum
        logged_steps += 1
        state.global_step += 1
        state.step_in_epoch += 1
        bar.update(1)
        run.beat("training", epoch=state.epoch + 1, step=state.global_step, steps=run.total_steps())
        if state.global_step % config.log_every == 0 or state.step_in_epoch == run.steps_per_epoch:
            if run.ctx.distributed:
                torch.distributed.all_reduce(running)
            mean_loss = float(running) / (config.resolved_batch * logged_steps)
            run.metrics.write(
                step=state.global_step, epoch=state.epoch + 1, loss=mean_loss, lr=lr, time=round(run.elapsed(), 3)
            )
            bar.set_postfix(loss=f"{mean_loss:.4f}")
            running.zero_()
            logged_steps = 0
        if (
            config.checkpoint_every
            and state.global_step % config.checkpoint_every == 0
            and state.step_in_epoch < run.steps_per_epoch
        ):
            run.save_resume()


def validate(run: _Run) -> tuple[float | None, float]:
    """Validation AUC and loss (rank 0 only; other ranks get ``(None, nan)``)."""
    if not run.ctx.is_main:
        return None, float("nan")
    config = run.config
    scores, loss = predict_bank(
        run.module,
        run.bank,
        run.val_items,
        config.resolved_micro_batch,
        centres=run.val_centres,
        patch_size=config.patch_size,
        bf16=run.bf16,
        channels_last=run.channels_last,
    )
    labels = run.bank.labels[run.val_items.to(run.bank.labels.device)]
    return (_auc(labels, scores) if len(run.val_items) else None), loss


def _apply_time_budget(run: _Run, first_epoch_here: bool, epoch_seconds: float) -> None:
    """Cut the planned epochs to what fits in ``time_budget_s`` (judged by the first epoch run here)."""
    config, state = run.config, run.state
    if config.time_budget_s is None:
        return
    budget_left = config.time_budget_s - run.elapsed()
    if first_epoch_here:
        fit = state.epoch + max(0, int(budget_left // max(epoch_seconds, 1e-9)))
        state.epochs = broadcast_int(run.ctx, min(state.epochs, max(fit, state.epoch)))
    elif broadcast_int(run.ctx, int(budget_left <= 0)):
        state.epochs = state.epoch


def _card_fields(run: _Run, val_auc: float | None, val_loss: float) -> dict:
    config, state = run.config, run.state
    size = (config.patch_size, config.patch_size) if run.patches else tuple(config.input_size)
    return dict(
        input_size=size,
        stage=config.stage,
        training_data=f"{config.manifest} ({len(run.train_items)} train / {len(run.val_items)} val "
        f"{'patch images' if run.patches else 'images'} at {config.input_size[0]}x{config.input_size[1]})",
        metrics={"val_auc": val_auc, "val_loss": val_loss, "best_val_auc": state.best_val_auc},
        preprocessing=preprocessing_info("canonical", config.clear_background),
        training={
            "config": config.to_dict(),
            "epochs_completed": state.epoch,
            "epochs_planned": config.epochs,
            "steps": state.global_step,
            "time_s": round(run.elapsed(), 1),
            "machine": describe_device(run.ctx.device),
            "processes": run.ctx.world,
            "stopped_by_time_budget": state.epochs < config.epochs,
        },
    )


def _end_epoch(run: _Run) -> tuple[float | None, float]:
    """Validate, keep the best and last checkpoints (rank 0), and write the resume state."""
    state = run.state
    state.epoch += 1
    state.step_in_epoch = 0
    run.beat("validating", epoch=state.epoch, step=state.global_step, steps=run.total_steps())
    val_auc, val_loss = validate(run)
    if run.ctx.is_main:
        run.metrics.write(
            epoch=state.epoch, step=state.global_step, val_auc=val_auc, val_loss=val_loss, time=round(run.elapsed(), 3)
        )
        score = [val_auc if val_auc is not None else -math.inf, -val_loss if val_loss == val_loss else -math.inf]
        if score > state.best_score or not run.path(f"{BEST_NAME}.safetensors").is_file():
            state.best_score, state.best_val_auc = score, val_auc
            save_checkpoint(run.module, run.path(BEST_NAME), **_card_fields(run, val_auc, val_loss))
    return val_auc, val_loss


def _train(
    config: TrainConfig, ctx: DistContext, bank: ImageBank | None, progress: bool, beat: Callable[..., None]
) -> TrainResult:
    out_dir = Path(config.out_dir)
    if ctx.is_main:
        _check_resumable(out_dir, config)
    if (out_dir / RESULT_NAME).is_file():
        return TrainResult.from_dict(json.loads((out_dir / RESULT_NAME).read_text()))
    beat("loading data")
    run = _setup_run(config, ctx, bank)
    if ctx.is_main:  # only a run that could start claims its folder: a refused one leaves nothing behind
        out_dir.mkdir(parents=True, exist_ok=True)
        atomic_write(out_dir / CONFIG_NAME, json.dumps(config.to_dict(), indent=2))
    run.beat = beat
    _resume(run)
    state = run.state
    bar = tqdm(
        total=run.total_steps(),
        initial=state.global_step,
        disable=not (progress and ctx.is_main),
        desc=f"{config.model} {config.stage}",
        unit="step",
        mininterval=1.0,
    )
    run.model.train()
    first_epoch_here = True
    while state.epoch < state.epochs and state.global_step < run.total_steps():
        epoch_started = time.perf_counter()
        train_one_epoch(run, bar)
        val_auc, val_loss = _end_epoch(run)
        _apply_time_budget(run, first_epoch_here, time.perf_counter() - epoch_started)
        bar.total = run.total_steps()
        first_epoch_here = False
        if ctx.is_main:
            save_checkpoint(run.module, run.path(LAST_NAME), **_card_fields(run, val_auc, val_loss))
        run.save_resume()
        barrier(ctx)
    bar.close()
    beat("done", epoch=state.epoch, step=state.global_step, steps=run.total_steps())
    result = TrainResult(
        out_dir=out_dir,
        best_checkpoint=out_dir / f"{BEST_NAME}.safetensors",
        last_checkpoint=out_dir / f"{LAST_NAME}.safetensors",
        metrics_path=run.metrics.path,
        best_val_auc=state.best_val_auc,
        epochs_completed=state.epoch,
        steps=state.global_step,
        time_s=round(run.elapsed(), 1),
        stopped_by_time_budget=state.epochs < config.epochs,
    )
    if ctx.is_main:
        atomic_write(out_dir / RESULT_NAME, json.dumps(result.to_dict(), indent=2))
    return result
