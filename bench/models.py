"""Model benchmark: forward and forward+backward time and peak memory of every model, and the AC
block's linear attention against exact softmax attention as the number of tokens grows.

    python bench/models.py --device cpu  [--sizes 512x512:16 3328x2560:1] [--repeats 3]
    python bench/models.py --device cuda --amp   # also bf16 autocast + channels_last
    python bench/models.py --input-grad --models gmic def_gmic --sizes 3328x2560:1 --rounds 3 \
        --deform-ops gather torchvision   # the ERF's work: eval forward + input gradient, ratio to GMIC
    ... --input-grad --threads 1 --clock cpu   # CPU time of one thread: steadier on a shared machine

Each CPU measurement runs in a fresh process so its peak resident memory (ru_maxrss) is its own;
the figure reported is the peak minus the process's resident memory before the first forward pass.
On CUDA, peak memory is ``torch.cuda.max_memory_allocated``. Prints markdown tables.
"""

from __future__ import annotations

import argparse
import json
import math
import platform
import resource
import subprocess
import sys
import time


def _rss_mb() -> float:
    with open("/proc/self/status") as handle:
        for line in handle:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return float("nan")


def _peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _sync(device: str) -> None:
    import torch

    if device == "cuda":
        torch.cuda.synchronize()


def _use_deform_op(op: str) -> None:
    """Make Def-GMIC's blocks call ``op``: ``gather`` (the project's) or ``torchvision``'s kernel."""
    if op == "torchvision":
        from torchvision.ops import deform_conv2d

        import hct.models.blocks as blocks

        blocks.deform_conv2d = lambda x, offset, weight, stride, padding: deform_conv2d(
            x, offset, weight, stride=stride, padding=padding
        )


def measure_model(
    name: str,
    height: int,
    width: int,
    batch: int,
    mode: str,
    device: str,
    repeats: int,
    amp: bool,
    deform_op: str = "gather",
    threads: int | None = None,
    clock: str = "wall",
) -> dict:
    """Median seconds per call and peak memory (MB) of one model in one mode.

    Modes: ``fwd`` (eval, no grad), ``fwd+bwd`` (train mode, parameter gradients), ``fwd+dx`` (eval,
    gradient w.r.t. the input only: the ERF's work). ``clock="cpu"`` times the process's CPU time
    (``time.process_time``) instead of the wall clock; ``threads`` sets torch's intra-op threads.
    """
    import torch

    from hct.models import create_model

    _use_deform_op(deform_op)
    if threads:
        torch.set_num_threads(threads)
    timer = time.process_time if clock == "cpu" else time.perf_counter
    torch.manual_seed(0)
    model = create_model(name).to(device)
    x = torch.randn(batch, 1, height, width, device=device)
    if amp:
        model = model.to(memory_format=torch.channels_last)
        x = x.contiguous(memory_format=torch.channels_last)
    model.train(mode == "fwd+bwd")
    if mode == "fwd+dx":
        _randomise_offsets(model)
    base = _rss_mb()
    if device == "cuda":
        torch.cuda.reset_peak_memory_stats()
        base_cuda = torch.cuda.memory_allocated()

    def step() -> None:
        with torch.autocast(device, dtype=torch.bfloat16, enabled=amp):
            if mode == "fwd":
                with torch.no_grad():
                    model(x)
            elif mode == "fwd+dx":
                torch.autograd.grad(model(x.requires_grad_()).float().sum(), x)
            else:
                model.zero_grad(set_to_none=True)
                model(x).float().sum().backward()

    step()  # warm-up (allocator, cudnn autotune)
    times = []
    for _ in range(repeats):
        _sync(device)
        start = timer()
        step()
        _sync(device)
        times.append(timer() - start)
    peak = (torch.cuda.max_memory_allocated() - base_cuda) / 2**20 if device == "cuda" else _peak_rss_mb() - base
    return {"seconds": sorted(times)[len(times) // 2], "peak_mb": peak}


def _randomise_offsets(model) -> None:
    """Trained offsets are not zero: give Def-GMIC's offset convolutions small random weights."""
    import torch

    from hct.models.blocks import DeformableConv3x3

    for module in model.modules():
        if isinstance(module, DeformableConv3x3):
            torch.nn.init.normal_(module.offset.weight, std=0.01)
            torch.nn.init.normal_(module.offset.bias, std=1.0)


def measure_attention(kind: str, tokens: int, dim: int, device: str, repeats: int) -> dict:
    """Forward time and peak memory of one attention layer over ``tokens`` positions.

    ``kind="exact"`` is standard softmax attention with the attention matrix materialised
    (``softmax(QK^T/sqrt(d)) V``), the quadratic reference the AC block avoids.
    """
    import torch
    from einops import rearrange

    from hct.models.attention import build_attention

    torch.manual_seed(0)
    side = int(math.sqrt(tokens))
    height, width = side, math.ceil(tokens / side)
    x = torch.randn(1, dim, height, width, device=device)
    layer = build_attention("performer_relu" if kind == "exact" else kind, dim).to(device).eval()
    heads = layer.heads

    def exact(t: torch.Tensor) -> torch.Tensor:
        tok = rearrange(t, "b c h w -> b (h w) c")
        attn = layer.attn
        q, k, v = (rearrange(p(tok), "b n (h d) -> b h n d", h=heads) for p in (attn.to_q, attn.to_k, attn.to_v))
        weights = torch.softmax(q @ k.transpose(-1, -2) / math.sqrt(q.shape[-1]), dim=-1)
        return attn.to_out(rearrange(weights @ v, "b h n d -> b n (h d)"))

    fn = exact if kind == "exact" else layer
    base = _rss_mb()
    if device == "cuda":
        torch.cuda.reset_peak_memory_stats()
        base_cuda = torch.cuda.memory_allocated()
    with torch.no_grad():
        fn(x)
        times = []
        for _ in range(repeats):
            _sync(device)
            start = time.perf_counter()
            fn(x)
            _sync(device)
            times.append(time.perf_counter() - start)
    peak = (torch.cuda.max_memory_allocated() - base_cuda) / 2**20 if device == "cuda" else _peak_rss_mb() - base
    return {"seconds": sorted(times)[len(times) // 2], "peak_mb": peak, "tokens": height * width}


def _in_subprocess(job: dict) -> dict:
    out = subprocess.run([sys.executable, __file__, "--worker", json.dumps(job)], capture_output=True, text=True)
    if out.returncode != 0:
        return {"error": (out.stderr.strip().splitlines() or ["?"])[-1]}
    return json.loads(out.stdout.strip().splitlines()[-1])


def _machine(device: str) -> str:
    import torch

    if device == "cuda":
        return f"{torch.cuda.get_device_name()} (torch {torch.__version__})"
    cpu = next(
        (line.split(":", 1)[1].strip() for line in open("/proc/cpuinfo") if line.startswith("model name")),
        platform.processor(),
    )
    return f"{cpu}, {torch.get_num_threads()} threads (torch {torch.__version__})"


def input_grad_table(run, args) -> None:
    """Eval forward + input gradient of each model (and each deformable op), interleaved over rounds,
    with each round's ratio to the first model."""
    rows = [(name, op) for name in args.models for op in (args.deform_ops if name.startswith("def_") else ["-"])]
    print(
        "| input | model | deform op | "
        + " | ".join(f"round {r + 1} s" for r in range(args.rounds))
        + " | median s | median ratio | peak MB |"
    )
    print("|---|---|---|" + "---|" * args.rounds + "---|---|---|")
    for size in args.sizes:
        hw, batch = size.split(":")
        height, width = map(int, hw.split("x"))
        results = {row: [] for row in rows}
        for _ in range(args.rounds):
            for name, op in rows:
                results[(name, op)].append(
                    run(
                        {
                            "what": "model",
                            "name": name,
                            "height": height,
                            "width": width,
                            "batch": int(batch),
                            "mode": "fwd+dx",
                            "device": args.device,
                            "repeats": args.repeats,
                            "amp": args.amp,
                            "deform_op": "gather" if op == "-" else op,
                            "threads": args.threads,
                            "clock": args.clock,
                        }
                    )
                )
        first = results[rows[0]]
        for row, res in results.items():
            if any("error" in r for r in res):
                print(f"| {hw} | {row[0]} | {row[1]} | error: {[r.get('error') for r in res]} |")
                continue
            secs = [r["seconds"] for r in res]
            ratios = sorted(r["seconds"] / f["seconds"] for r, f in zip(res, first))
            print(
                f"| {hw}:{batch} | {row[0]} | {row[1]} | "
                + " | ".join(f"{t:.3f}" for t in secs)
                + f" | {sorted(secs)[len(secs) // 2]:.3f} | {ratios[len(ratios) // 2]:.2f} | "
                f"{max(r['peak_mb'] for r in res):.0f} |",
                flush=True,
            )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--device", default="cpu", choices=["cpu", "cuda"])
    parser.add_argument("--sizes", nargs="+", default=["512x512:16", "3328x2560:1"], help="HxW:batch")
    parser.add_argument("--models", nargs="+", default=None)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--amp", action="store_true", help="bf16 autocast + channels_last (CUDA)")
    parser.add_argument("--tokens", nargs="+", type=int, default=[500, 1000, 2000, 4000, 8000, 16000])
    parser.add_argument("--attention-dim", type=int, default=64, help="channels at the first AC block (64)")
    parser.add_argument("--skip-models", action="store_true")
    parser.add_argument(
        "--input-grad",
        action="store_true",
        help="only the table of eval forward + input gradient (the ERF's work), interleaved",
    )
    parser.add_argument("--rounds", type=int, default=3, help="rounds of the --input-grad table")
    parser.add_argument(
        "--deform-ops",
        nargs="+",
        default=["gather"],
        choices=["gather", "torchvision"],
        help="deformable-convolution ops to time for Def-GMIC (--input-grad)",
    )
    parser.add_argument("--threads", type=int, default=None, help="torch threads per cell (--input-grad)")
    parser.add_argument(
        "--clock",
        default="wall",
        choices=["wall", "cpu"],
        help="time the wall clock or the process's CPU time (--input-grad)",
    )
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    args = parser.parse_args()

    if args.threads:
        import torch

        torch.set_num_threads(args.threads)  # also named in the machine line
    if args.worker:
        job = json.loads(args.worker)
        fn = measure_attention if job.pop("what") == "attention" else measure_model
        print(json.dumps(fn(**job)))
        return

    from hct.models import list_models

    def in_process(job: dict):
        return (measure_attention if job.pop("what") == "attention" else measure_model)(**job)

    run = _in_subprocess if args.device == "cpu" else in_process
    print(
        f"Machine: {_machine(args.device)}; {time.strftime('%Y-%m-%d')}; `python bench/models.py {' '.join(sys.argv[1:])}`\n"
    )
    if args.input_grad:
        input_grad_table(run, argparse.Namespace(**{**vars(args), "models": args.models or list_models()}))
        return
    if not args.skip_models:
        print("| model | input | batch | forward s | fwd+bwd s | fwd peak MB | fwd+bwd peak MB |")
        print("|---|---|---|---|---|---|---|")
        for size in args.sizes:
            hw, batch = size.split(":")
            height, width = map(int, hw.split("x"))
            for name in args.models or list_models():
                res = {}
                for mode in ("fwd", "fwd+bwd"):
                    res[mode] = run(
                        {
                            "what": "model",
                            "name": name,
                            "height": height,
                            "width": width,
                            "batch": int(batch),
                            "mode": mode,
                            "device": args.device,
                            "repeats": args.repeats,
                            "amp": args.amp,
                        }
                    )
                if any("error" in r for r in res.values()):
                    print(f"| {name} | {hw} | {batch} | error: {[r.get('error') for r in res.values()]} |||||")
                    continue
                print(
                    f"| {name} | {hw} | {batch} | {res['fwd']['seconds']:.3f} | {res['fwd+bwd']['seconds']:.3f} | "
                    f"{res['fwd']['peak_mb']:.0f} | {res['fwd+bwd']['peak_mb']:.0f} |",
                    flush=True,
                )
    print(f"\nAttention over N tokens, {args.attention_dim} channels, 8 heads, forward, batch 1:\n")
    print("| tokens | kind | seconds | peak MB |")
    print("|---|---|---|---|")
    for tokens in args.tokens:
        for kind in ("performer_relu", "performer_softmax", "nystrom", "exact"):
            res = run(
                {
                    "what": "attention",
                    "kind": kind,
                    "tokens": tokens,
                    "dim": args.attention_dim,
                    "device": args.device,
                    "repeats": args.repeats,
                }
            )
            if "error" in res:
                print(f"| {tokens} | {kind} | error: {res['error']} | |")
            else:
                print(f"| {res['tokens']} | {kind} | {res['seconds']:.4f} | {res['peak_mb']:.1f} |", flush=True)


if __name__ == "__main__":
    main()
