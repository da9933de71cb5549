"""Def-GMIC's deformable convolution: the project's gather op against torchvision's kernel.

    python bench/deform_conv.py --device cpu            # or cuda, on a GPU machine
    python bench/deform_conv.py --device cuda --size 3328x2560 --repeats 10

For each of Def-GMIC's deformable layers at ``--size`` (shapes taken from the model), prints the
largest differences of the output and of the gradients w.r.t. input, offsets and weight between
``hct.models.deform_conv.deform_conv2d_gather`` and ``torchvision.ops.deform_conv2d`` (float64
and float32, random offsets of a few pixels, some outside the map), then the time of each op
(forward + all three gradients) and of the whole model (eval forward + input gradient, and train
forward + backward). Also reports which op ``deform_conv2d`` dispatches to on the device.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time

import torch
from torchvision.ops import deform_conv2d as torchvision_op

from hct.models import create_model
from hct.models.blocks import DeformableConv3x3
from hct.models.deform_conv import TORCHVISION_DEVICES, deform_conv2d, deform_conv2d_gather

OPS = {
    "gather": lambda x, off, w, s: deform_conv2d_gather(x, off, w, s, 1),
    "torchvision": lambda x, off, w, s: torchvision_op(x, off, w, stride=s, padding=1),
}


def layer_shapes(height: int, width: int) -> list[tuple[int, int, int, int, int]]:
    """(in channels, out channels, H, W, stride) of each deformable layer of Def-GMIC."""
    model, shapes = create_model("def_gmic").eval(), []
    for module in model.modules():
        if isinstance(module, DeformableConv3x3):
            module.register_forward_hook(
                lambda m, inp, out: shapes.append((inp[0].shape[1], out.shape[1], *inp[0].shape[2:], m.conv.stride[0]))
            )
    with torch.no_grad():
        model(torch.zeros(1, 1, height, width))
    return shapes


def _inputs(shape, device, dtype, seed=0):
    cin, cout, h, w, s = shape
    gen = torch.Generator().manual_seed(seed)
    ho, wo = (h - 1) // s + 1, (w - 1) // s + 1
    x = torch.randn(1, cin, h, w, generator=gen, dtype=dtype)
    off = torch.randn(1, 18, ho, wo, generator=gen, dtype=dtype) * 3
    weight = torch.randn(cout, cin, 3, 3, generator=gen, dtype=dtype) / (3 * cin**0.5)
    return [t.to(device).requires_grad_() for t in (x, off, weight)], s


def _sync(device: str) -> None:
    if device == "cuda":
        torch.cuda.synchronize()


def max_differences(shape, device: str, dtype: torch.dtype) -> list[float]:
    """Largest |gather - torchvision| of the output and the input, offset and weight gradients."""
    (x, off, w), s = _inputs(shape, device, dtype)
    results = []
    for op in OPS.values():
        out = op(x, off, w, s)
        grads = torch.autograd.grad(out, (x, off, w), torch.ones_like(out))
        results.append((out, *grads))
    return [(a - b).abs().max().item() for a, b in zip(*results)]


def _median_time(fn, device: str, repeats: int) -> float:
    fn()
    times = []
    for _ in range(repeats):
        _sync(device)
        start = time.perf_counter()
        fn()
        _sync(device)
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def op_time(shape, device: str, op: str, repeats: int) -> float:
    (x, off, w), s = _inputs(shape, device, torch.float32)
    return _median_time(lambda: torch.autograd.grad(OPS[op](x, off, w, s).sum(), (x, off, w)), device, repeats)


def model_time(height: int, width: int, device: str, op: str, mode: str, repeats: int) -> float:
    """Def-GMIC (random offsets) in ``fwd+dx`` (eval, input gradient) or ``fwd+bwd`` (train) mode."""
    import hct.models.blocks as blocks

    blocks.deform_conv2d = lambda x, off, w, s, p: OPS[op](x, off, w, s)
    torch.manual_seed(0)
    model = create_model("def_gmic").to(device).train(mode == "fwd+bwd")
    for module in model.modules():
        if isinstance(module, DeformableConv3x3):
            torch.nn.init.normal_(module.offset.weight, std=0.01)
            torch.nn.init.normal_(module.offset.bias, std=1.0)
    x = torch.randn(1, 1, height, width, device=device, requires_grad=True)
    params = [x] + (list(model.parameters()) if mode == "fwd+bwd" else [])
    seconds = _median_time(lambda: torch.autograd.grad(model(x).sum(), params), device, repeats)
    blocks.deform_conv2d = deform_conv2d
    return seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--device", default="cpu", choices=["cpu", "cuda"])
    parser.add_argument("--size", default="3328x2560")
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    height, width = map(int, args.size.split("x"))
    torch.backends.cudnn.allow_tf32 = torch.backends.cuda.matmul.allow_tf32 = False
    machine = torch.cuda.get_device_name() if args.device == "cuda" else f"CPU, {torch.get_num_threads()} threads"
    print(f"{machine}; torch {torch.__version__}; `python bench/deform_conv.py {' '.join(sys.argv[1:])}`\n")
    print(f"deform_conv2d on {args.device} uses: {'torchvision' if args.device in TORCHVISION_DEVICES else 'gather'}\n")
    print(
        "| layer (in, out, H, W, stride) | dtype | max diff out | dx | d offset | d weight | gather s | torchvision s |"
    )
    print("|---|---|---|---|---|---|---|---|")
    for shape in layer_shapes(height, width):
        for dtype in (torch.float64, torch.float32):
            diffs = " | ".join(f"{d:.1e}" for d in max_differences(shape, args.device, dtype))
            times = (
                " | ".join(f"{op_time(shape, args.device, op, args.repeats):.4f}" for op in OPS)
                if dtype == torch.float32
                else " | "
            )
            print(f"| {shape} | {str(dtype)[6:]} | {diffs} | {times} |", flush=True)
    print(f"\nDef-GMIC at {args.size}, batch 1, float32, median of {args.repeats}:\n")
    print("| mode | gather s | torchvision s |")
    print("|---|---|---|")
    for mode in ("fwd+dx", "fwd+bwd"):
        print(
            f"| {mode} | "
            + " | ".join(f"{model_time(height, width, args.device, op, mode, args.repeats):.4f}" for op in OPS)
            + " |",
            flush=True,
        )


if __name__ == "__main__":
    main()
