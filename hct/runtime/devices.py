"""Choosing the compute device: CUDA when present, else CPU."""

from __future__ import annotations

import torch

from hct.errors import ConfigError


def resolve_device(name: str = "auto") -> torch.device:
    """``"auto"`` picks CUDA when a GPU is available, else CPU; ``"cuda"`` without a GPU is an error."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name.startswith("cuda") and not torch.cuda.is_available():
        raise ConfigError(f"device {name!r} was asked for but no CUDA GPU is available; use 'cpu' or 'auto'")
    try:
        return torch.device(name)
    except RuntimeError as err:
        raise ConfigError(f"unknown device {name!r}; use 'auto', 'cpu' or 'cuda'") from err


def describe_device(device: torch.device) -> str:
    """A human-readable name: the GPU's model, or the CPU's with its thread count."""
    if device.type == "cuda":
        return torch.cuda.get_device_name(device)
    model = ""
    try:
        with open("/proc/cpuinfo") as handle:
            model = next((line.split(":", 1)[1].strip() for line in handle if line.startswith("model name")), "")
    except OSError:
        pass
    return f"CPU {model} ({torch.get_num_threads()} threads)".replace("  ", " ")


def disable_tf32() -> None:
    """Switch TF32 off for the whole process, for good: CUDA convolutions and matrix products in full float32.

    The flags are process-global, so a context that switched them for one computation and back would
    change the matmuls of every other thread mid-run (the app serves each user from a thread). With
    TF32 on, an H200 gave ERF maps that differed from float32 by up to 7% of the map's maximum.
    """
    torch.backends.cudnn.allow_tf32 = False
    torch.backends.cuda.matmul.allow_tf32 = False


OutOfMemoryError = torch.cuda.OutOfMemoryError  # what a computation raises when the GPU's memory runs out


def free_device_memory() -> None:
    """Give the GPU memory torch holds cached back to the device (after an out-of-memory error, or once
    models are dropped); nothing without a GPU."""
    if torch.cuda.is_available():
        torch.cuda.empty_cache()
