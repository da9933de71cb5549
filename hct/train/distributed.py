"""Multi-process training under ``torchrun``: who does which micro-batch, and BatchNorm across ranks.

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

from hct.distributed import DistContext, barrier, broadcast_int, setup, teardown

__all__ = ["DistContext", "barrier", "broadcast_int", "setup", "teardown"]
