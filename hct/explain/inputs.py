"""What every explanation does first: put the model in eval mode and turn one image into a batch.

:func:`eval_mode` is MONAI's ``eval_mode``; :func:`as_batch` plays captum's ``_format_input``.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import torch
from torch import nn

from hct.data.image.preprocess import Preprocessed
from hct.errors import ConfigError
from hct.runtime.devices import disable_tf32

ImageInput = torch.Tensor | Preprocessed


@contextmanager
def eval_mode(model: nn.Module) -> Iterator[nn.Module]:
    """The model in eval mode and full float32 precision for the duration; every module's training flag is
    restored after.

    TF32 is switched off for the process and never back (:func:`hct.runtime.devices.disable_tf32`): the flags
    are process-global, so restoring them would change other threads' matmuls mid-run. With TF32 on,
    an H200 gave ERF maps that differed from float32 by up to 7% of the map's maximum.
    """
    flags = [(module, module.training) for module in model.modules()]
    model.eval()
    disable_tf32()
    try:
        yield model
    finally:
        for module, flag in flags:
            module.training = flag


def as_batch(model: nn.Module, image: ImageInput) -> tuple[torch.Tensor, Preprocessed | None]:
    """``(1, C, H, W)`` on the model's device and dtype, and the ``Preprocessed`` it came from (if any).

    ``image`` is a ``(C, H, W)`` or ``(1, C, H, W)`` tensor, or a ``Preprocessed`` (its ``tensor``).
    """
    preprocessed = image if isinstance(image, Preprocessed) else None
    tensor = image.tensor if preprocessed is not None else image
    if not isinstance(tensor, torch.Tensor):
        raise ConfigError(f"explain a tensor or a Preprocessed image, not a {type(image).__name__}")
    if tensor.dim() == 3:
        tensor = tensor[None]
    if tensor.dim() != 4 or tensor.shape[0] != 1:
        raise ConfigError(f"explain one image: expected (C, H, W) or (1, C, H, W), got {tuple(tensor.shape)}")
    param = next(model.parameters())
    return tensor.to(device=param.device, dtype=param.dtype), preprocessed
