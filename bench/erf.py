"""ERF throughput: the paper's procedure done straightforwardly versus ``hct.explain.compute_erf``.

Straightforward: one image at a time, parameters requiring grad,
``features[:, :, ci, cj].sum().backward()``, read ``x.grad``. Engine: ``compute_erf`` (input
gradient only, channels-last on CPU, batched on CUDA, GMIC back-propagated through its receptive
field's window only). Both run in one process on the same random images; the signed maps are
compared. On CUDA, TF32 is off in both and cudnn autotuning is off (no re-tuning per batch shape).
Prints a markdown table.

    python bench/erf.py --device cpu --n 3 --sizes 1664x1280 3328x2560 --models gmic hct_performer_relu
    python bench/erf.py --device cuda --n 100 --sizes 3328x2560 --repeats 1
"""

from __future__ import annotations

import argparse
import platform
import time

import numpy as np
import torch

from hct.explain import ERFEngine, compute_erf
from hct.models import create_model, list_models


def straightforward(model, images: torch.Tensor) -> np.ndarray:
    """Per-image input gradients, one image at a time, as a direct reading of the paper."""
    model.eval()
    grads = []
    for image in images:
        x = image[None].clone().requires_grad_(True)
        features = model.forward_features(x)
        ci, cj = features.shape[2] // 2, features.shape[3] // 2
        features[:, :, ci, cj].sum().backward()
        grads.append(x.grad[0].sum(0).cpu().numpy())
        model.zero_grad(set_to_none=True)
    return np.stack(grads)


def _timed(fn, device: torch.device):
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    start = time.perf_counter()
    out = fn()
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    return out, time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--n", type=int, default=3, help="images per mode and model")
    parser.add_argument("--sizes", nargs="+", default=["1664x1280", "3328x2560"])
    parser.add_argument("--models", nargs="+", default=list_models())
    parser.add_argument("--batch-size", default="auto", help="engine batch size: 'auto' or an int")
    parser.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: all cores)")
    parser.add_argument("--repeats", type=int, default=2, help="alternating timed rounds; the best counts")
    args = parser.parse_args()
    # Both procedures in full float32 (the engine switches TF32 off itself), so the maps compare.
    torch.backends.cudnn.allow_tf32 = torch.backends.cuda.matmul.allow_tf32 = False
    torch.backends.cudnn.benchmark = False
    device = torch.device(args.device)
    if args.threads:
        torch.set_num_threads(args.threads)
    batch = args.batch_size if args.batch_size == "auto" else int(args.batch_size)
    name = torch.cuda.get_device_name(device) if device.type == "cuda" else platform.processor() or platform.machine()
    print(
        f"device {device} ({name}), "
        f"torch {torch.__version__}, threads {torch.get_num_threads()}, n {args.n}, repeats {args.repeats}\n"
    )
    print("| model | size | straightforward img/s | engine img/s | speed-up | max abs diff | max abs map |")
    print("|---|---|---|---|---|---|---|")
    for size in args.sizes:
        height, width = (int(v) for v in size.split("x"))
        images = torch.randn(args.n, 1, height, width, generator=torch.Generator().manual_seed(0)).to(device)
        for name in args.models:
            torch.manual_seed(0)
            model = create_model(name).to(device).eval()
            compute_erf(model, images[:1])  # warm-up (allocator, kernel loading)
            naive_t = engine_t = float("inf")
            for _ in range(args.repeats):  # alternate, so that load from elsewhere hits both alike
                naive, t = _timed(lambda model=model, images=images: straightforward(model, images), device)
                naive_t = min(naive_t, t)
                result, t = _timed(
                    lambda model=model, images=images: compute_erf(
                        model, images, reduction="mean", keep_image_maps=True, engine=ERFEngine(batch_size=batch)
                    ),
                    device,
                )
                engine_t = min(engine_t, t)
            diff = float(np.abs(result.image_maps - naive).max())
            print(
                f"| {name} | {size} | {args.n / naive_t:.3f} | {args.n / engine_t:.3f} | "
                f"{naive_t / engine_t:.2f}x | {diff:.2e} | {np.abs(naive).max():.2e} |",
                flush=True,
            )


if __name__ == "__main__":
    main()
