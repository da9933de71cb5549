"""Several processes started by ``torchrun``: the process group, and work shared out and gathered.

Generic: training (``hct.train.loop``), ``predict`` and the ERF engine (``hct.explain.erf.engine``) use it,
each inside :func:`process_group`. Work items are cut into rounds of contiguous ranges, one range per rank in
rank order, so that rank 0 can put the gathered results back in item order and reduce them exactly as one
process does.
"""

from __future__ import annotations

import contextlib
import datetime
import os
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import TypeVar

import torch
import torch.distributed as dist

from hct.errors import ConfigError

T = TypeVar("T")


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

    def shard(self, items: Sequence[T]) -> list[T]:
        """The items this rank takes when items are dealt round-robin: ``rank, rank + world, ...``."""
        return list(items[self.rank :: self.world])


def _setup(device: torch.device) -> DistContext:
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


def _teardown(context: DistContext) -> None:
    if context.distributed and dist.is_initialized():
        dist.destroy_process_group()


@contextlib.contextmanager
def process_group(device: torch.device) -> Iterator[DistContext]:
    """This process's :class:`DistContext` on ``device``, in torchrun's process group while the block runs
    (``WORLD_SIZE`` > 1; NCCL on CUDA, gloo on CPU). After a block that ends normally every rank waits for
    the others before the group is destroyed: gloo aborts a rank that destroys its group while a peer still
    reads from it (after ``gather_object``, rank 1 died with SIGABRT, "terminate called without an active
    exception", about once in a CI run). After an error the group is destroyed at once."""
    context = _setup(device)
    try:
        yield context
        barrier(context)
    finally:
        _teardown(context)


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


def round_ranges(start: int, stop: int, world: int) -> list[range]:
    """Items ``start..stop-1`` cut into ``world`` contiguous ranges of near-equal length, in rank order
    (the first ranges one longer); concatenated, they are the items in order."""
    count, ranges = stop - start, []
    for rank in range(world):
        length = count // world + (rank < count % world)
        ranges.append(range(start, start + length))
        start += length
    return ranges


def gather_to_main(context: DistContext, value: T) -> list[T] | None:
    """Every rank's ``value`` on rank 0, in rank order; ``None`` on the other ranks (pickled, so any
    picklable value; a CUDA run needs ``torch.cuda.set_device``, which :func:`process_group` does)."""
    if not context.distributed:
        return [value]
    gathered: list | None = [None] * context.world if context.is_main else None
    dist.gather_object(value, gathered, dst=0)
    return gathered
