"""Training throughput of every model: patches/s at 512x512 and images/s at 1664x1280 (and 3328x2560 on CUDA).

One timed step is what ``hct.train`` does per step on in-memory data: forward, cross entropy,
backward, Adam (bf16 autocast and channels_last on CUDA). Usage:
    python bench/train.py --device cpu --steps 3
"""

from __future__ import annotations

import argparse
import os
import platform
import time

import torch
import torch.nn.functional as F

from hct.models import create_model, list_models
from hct.runtime.devices import describe_device


def throughput(name: str, size: tuple[int, int], batch: int, steps: int, device: torch.device) -> float:
    """Samples per second over ``steps`` timed training steps (after one warm-up step)."""
    cuda = device.type == "cuda"
    model = create_model(name).to(device).train()
    if cuda:
        model = model.to(memory_format=torch.channels_last)
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-4)
    x = torch.randn(batch, 1, *size, device=device)
    if cuda:
        x = x.contiguous(memory_format=torch.channels_last)
    y = torch.randint(0, 2, (batch,), device=device)

    def step() -> None:
        with torch.autocast(device.type, dtype=torch.bfloat16, enabled=cuda):
            loss = F.cross_entropy(model(x).float(), y)
        loss.backward()
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)

    step()
    if cuda:
        torch.cuda.synchronize()
    start = time.perf_counter()
    for _ in range(steps):
        step()
    if cuda:
        torch.cuda.synchronize()
    return batch * steps / (time.perf_counter() - start)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--steps", type=int, default=5)
    parser.add_argument("--models", nargs="+", default=list_models())
    parser.add_argument("--batch-patch", type=int, default=None, help="default 4 on CPU, 160 on CUDA")
    parser.add_argument("--batch-image", type=int, default=None, help="default 1 on CPU, 8 on CUDA")
    args = parser.parse_args()
    device = torch.device(args.device)
    cuda = device.type == "cuda"
    if cuda:
        torch.backends.cudnn.benchmark = True
    batch_patch = args.batch_patch or (160 if cuda else 4)
    batch_image = args.batch_image or (8 if cuda else 1)
    settings = [("patches/s 512x512", (512, 512), batch_patch), ("images/s 1664x1280", (1664, 1280), batch_image)]
    if cuda:
        settings.append(("images/s 3328x2560", (3328, 2560), max(1, batch_image // 4)))
    print(
        f"machine: {describe_device(device)}; nproc {os.cpu_count()}; torch {torch.__version__}; "
        f"{platform.platform()}; {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}; steps {args.steps}"
    )
    print("| model | " + " | ".join(f"{label} (batch {batch})" for label, _, batch in settings) + " |")
    print("|---|" + "---|" * len(settings))
    for name in args.models:
        cells = [f"{throughput(name, size, batch, args.steps, device):.2f}" for _, size, batch in settings]
        print(f"| {name} | " + " | ".join(cells) + " |", flush=True)


if __name__ == "__main__":
    main()
