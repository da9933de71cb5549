"""The project's deformable convolution equals torchvision's ``deform_conv2d``: outputs and gradients."""

import pytest
import torch
from torchvision.ops import DeformConv2d
from torchvision.ops import deform_conv2d as torchvision_deform_conv2d

import hct.models.blocks as blocks
from hct.models.blocks import DeformableConv3x3
from hct.models.card import CHECKPOINT_DIR
from hct.models.checkpoints import load_model
from hct.models.deform_conv import deform_conv2d, deform_conv2d_gather

DEVICES = ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])
TOLERANCE = {torch.float32: {"rtol": 1e-4, "atol": 1e-5}, torch.float64: {"rtol": 1e-10, "atol": 1e-12}}


def _offsets(batch: int, height: int, width: int, dtype: torch.dtype, kind: str) -> torch.Tensor:
    """``random``: a few pixels, fractional, many outside the map; ``integer``: whole pixels only, so
    taps land exactly on rows/columns -1 and H (the edges of torchvision's rule) and on the grid."""
    gen = torch.Generator().manual_seed(1)
    off = torch.randn(batch, 18, height, width, generator=gen, dtype=dtype) * 3
    if kind == "random":
        off[:, :, 0, 0] = 40.0  # far outside the map
        off[:, :, -1, -1] = -0.999  # just inside row / column -1 for the bottom-right output
        return off
    return off.round().clamp(-2, 2)


def _compare(fn, device: str, dtype: torch.dtype, stride: int, kind: str, x_format=torch.contiguous_format):
    gen = torch.Generator().manual_seed(0)
    x = torch.randn(2, 5, 9, 11, generator=gen, dtype=dtype)
    ho, wo = (9 - 1) // stride + 1, (11 - 1) // stride + 1
    offset = _offsets(2, ho, wo, dtype, kind)
    weight = torch.randn(4, 5, 3, 3, generator=gen, dtype=dtype)
    grad_out = torch.randn(2, 4, ho, wo, generator=gen, dtype=dtype).to(device)
    results = []
    for op in (fn, lambda *a: torchvision_deform_conv2d(*a, stride=stride, padding=1)):
        inputs = [x.to(device).contiguous(memory_format=x_format), offset.to(device), weight.to(device)]
        inputs = [t.requires_grad_() for t in inputs]
        out = op(*inputs) if op is not fn else fn(*inputs, stride, 1)
        results.append((out, *torch.autograd.grad(out, inputs, grad_out)))
    for name, ours, ref in zip(("output", "d input", "d offset", "d weight"), *results):
        torch.testing.assert_close(ours, ref, **TOLERANCE[dtype], msg=lambda m, name=name: f"{name}: {m}")


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("fn", [deform_conv2d_gather, deform_conv2d], ids=["gather", "dispatch"])
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("stride", [1, 2])
@pytest.mark.parametrize("kind", ["random", "integer"])
def test_equals_torchvision_outputs_and_gradients(device, fn, dtype, stride, kind):
    _compare(fn, device, dtype, stride, kind)


def test_channels_last_input_gives_the_same_result():
    _compare(deform_conv2d_gather, "cpu", torch.float64, 2, "random", torch.channels_last)


def test_zero_offsets_make_it_a_plain_convolution():
    x, weight = torch.randn(1, 3, 6, 7, dtype=torch.float64), torch.randn(2, 3, 3, 3, dtype=torch.float64)
    out = deform_conv2d_gather(x, torch.zeros(1, 18, 3, 4, dtype=torch.float64), weight, 2, 1)
    torch.testing.assert_close(out, torch.nn.functional.conv2d(x, weight, stride=2, padding=1))


@pytest.mark.parametrize("offset_shape", [(1, 36, 5, 5), (1, 18, 4, 5)], ids=["two groups", "wrong size"])
def test_rejects_offsets_of_another_shape(offset_shape):
    with pytest.raises(ValueError, match=r"offset must be \(1, 18, 5, 5\)"):
        deform_conv2d_gather(torch.randn(1, 4, 5, 5), torch.randn(offset_shape), torch.randn(2, 4, 3, 3))


def test_cpu_autocast_samples_in_float32():
    gen = torch.Generator().manual_seed(0)
    x, weight = torch.randn(1, 4, 48, 48, generator=gen), torch.randn(3, 4, 3, 3, generator=gen)
    offset = (torch.rand(1, 18, 48, 48, generator=gen) - 0.5).bfloat16()  # positions up to 48: bf16 steps of 0.25
    with torch.autocast("cpu", dtype=torch.bfloat16):
        out = deform_conv2d_gather(x, offset, weight)
    reference = torchvision_deform_conv2d(x, offset.float(), weight, padding=1)
    torch.testing.assert_close(out.float(), reference, rtol=0.02, atol=0.1)


def test_block_keeps_checkpoint_names_and_equals_torchvisions_module():
    torch.manual_seed(0)
    block = DeformableConv3x3(6, 8, stride=2).double()
    assert {k: tuple(v.shape) for k, v in block.state_dict().items()} == {
        "offset.weight": (18, 6, 3, 3),
        "offset.bias": (18,),
        "conv.weight": (8, 6, 3, 3),
    }
    torch.nn.init.normal_(block.offset.weight, std=0.5)
    torch.nn.init.normal_(block.offset.bias, std=2.0)
    assert isinstance(block.conv, DeformConv2d)  # the model's init finds it; erf.py detects it
    x = torch.randn(2, 6, 10, 9, dtype=torch.float64)
    torch.testing.assert_close(block(x), block.conv(x, block.offset(x)))


def test_shipped_def_gmic_checkpoint_gives_torchvisions_logits_and_input_gradient(monkeypatch):
    path = CHECKPOINT_DIR / "def_gmic.safetensors"
    if not path.is_file():
        pytest.skip("no shipped def_gmic checkpoint")
    model, _ = load_model(path)  # strict: the parameter names and shapes are unchanged
    x = torch.randn(1, 1, 320, 256, generator=torch.Generator().manual_seed(0))
    results = []
    for op in (deform_conv2d, lambda x, off, w, s, p: torchvision_deform_conv2d(x, off, w, stride=s, padding=p)):
        monkeypatch.setattr(blocks, "deform_conv2d", op)
        xx = x.clone().requires_grad_()
        logits = model(xx)
        results.append((logits, *torch.autograd.grad(logits[:, 1].sum(), xx)))
    for ours, ref in zip(*results):
        torch.testing.assert_close(ours, ref, rtol=1e-4, atol=1e-5)
