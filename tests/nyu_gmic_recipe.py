"""The seeded recipe behind tests/fixtures/nyu_gmic: random weights in the layout of NYU's GMIC
(nyukat/GMIC) and random mammogram-like inputs, drawn the same way by the fixture script (which
runs their code) and by the test (which runs this project's), so that no weights are committed."""

from __future__ import annotations

import json
import math

import torch
import torch.nn.functional as F

from tests.paths import FIXTURES

FIXTURE = FIXTURES / "nyu_gmic"
SEED = 20261204
INPUT_SIZE = (2944, 1920)
MODEL_INDICES = (1, 4, 5)  # input i is run with the percent_t of model MODEL_INDICES[i]


def their_layout() -> list[tuple[str, list[int], str]]:
    """``(key, shape, dtype)`` of their GMIC's state dict, in its order (written by the fixture script)."""
    return [tuple(entry) for entry in json.loads((FIXTURE / "state_dict_layout.json").read_text())]


def _draw(key: str, shape: list[int], dtype: str, generator: torch.Generator) -> torch.Tensor:
    if dtype == "int64":  # num_batches_tracked
        return torch.randint(1, 10000, shape, generator=generator)
    if key.endswith(("running_mean", ".bias")):
        return 0.1 * torch.randn(shape, generator=generator)
    if key.endswith("running_var"):
        return 0.5 + 1.5 * torch.rand(shape, generator=generator)
    if len(shape) == 1:  # BN weight
        return 0.5 + torch.rand(shape, generator=generator)
    return torch.randn(shape, generator=generator) / math.sqrt(math.prod(shape[1:]))


def seeded_state_dict(layout: list[tuple[str, list[int], str]], seed: int = SEED) -> dict[str, torch.Tensor]:
    """Their-format state dict: every entry drawn from one generator seeded ``seed``, in layout order."""
    generator = torch.Generator().manual_seed(seed)
    return {key: _draw(key, list(shape), dtype, generator) for key, shape, dtype in layout}


def seeded_inputs(count: int = 3, seed: int = SEED + 1) -> torch.Tensor:
    """``(count, 1, 2944, 1920)`` standardised images: smooth blobs (a coarse random field upsampled
    bicubically) plus fine noise, so the saliency maps have clear maxima."""
    generator = torch.Generator().manual_seed(seed)
    coarse = torch.randn(count, 1, INPUT_SIZE[0] // 128, INPUT_SIZE[1] // 128, generator=generator)
    image = F.interpolate(coarse, size=INPUT_SIZE, mode="bicubic", align_corners=False)
    image = image + 0.1 * torch.randn(count, 1, *INPUT_SIZE, generator=generator)
    mean = image.mean(dim=(2, 3), keepdim=True)
    return (image - mean) / image.std(dim=(2, 3), keepdim=True)
