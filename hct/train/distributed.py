"""Multi-process training under ``torchrun``: process group, device, and who does which micro-batch.

Every process holds the whole (in-memory) data set and computes the same global batch from the
epoch's seeded order. Micro-batch ``j`` of a global batch goes to rank ``j mod world``, and its
augmentation and dropout are keyed by ``j``: the ``world`` processes together compute exactly the
gradient a single process computes with the same ``micro_batch`` (up to summation order). This is
the DistributedSampler idea done per micro-batch, so that the equality holds step by step.

BatchNorm: on CUDA the model is converted to SyncBatchNorm (statistics over all ranks' concurrent
micro-batches). On CPU (gloo) SyncBatchNorm is unsupported, so each micro-batch is normalised with
its own statistics, exactly as in the single-process run, and the running statistics are rank 0's
(DDP broadcasts rank 0's buffers at each forward).
"""

from __future__ import annotations

import datetime
import os
from dataclasses import dataclass

import torch
import torch.distributed as dist

from hct.errors import ConfigError


@dataclass(frozen=True)
class DistContext:
    """This process's place in the run: ``rank`` of ``world`` processes, on ``device``."""

    rank: int = 0
    world: int = 1
    device: torch.device = torch.device("cpu")

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    @property
    def distributed(self) -> bool:
        return self.world > 1

    def my_micro_batches(self, count: int) -> list[int]:
        """The micro-batch numbers (of ``count`` per step) this rank computes."""
        return list(range(self.rank, count, self.world))


def setup(device: torch.device) -> DistContext:
    """Join the process group when started by torchrun (``WORLD_SIZE`` > 1); NCCL on CUDA, gloo on CPU."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world <= 1:
        return DistContext(device=device)
    rank, local_rank = int(os.environ["RANK"]), int(os.environ.get("LOCAL_RANK", "0"))
    if device.type == "cuda":
        if torch.cuda.device_count() <= local_rank:
            raise ConfigError(f"Local rank {local_rank} has no GPU ({torch.cuda.device_count()} visible).")
        device = torch.device("cuda", local_rank)
        torch.cuda.set_device(device)
    if not dist.is_initialized():
        dist.init_process_group("nccl" if device.type == "cuda" else "gloo", timeout=datetime.timedelta(minutes=30))
    return DistContext(rank=rank, world=world, device=device)


def teardown(context: DistContext) -> None:
    if context.distributed and dist.is_initialized():
        dist.destroy_process_group()


def broadcast_int(context: DistContext, value: int) -> int:
    """Rank 0's ``value`` on every rank."""
    if not context.distributed:
        return value
    tensor = torch.tensor([value], dtype=torch.long, device=context.device)
    dist.broadcast(tensor, src=0)
    return int(tensor.item())


def barrier(context: DistContext) -> None:
    if context.distributed:
        dist.barrier()
