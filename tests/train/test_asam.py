"""ASAM against its definition on a quadratic, and BatchNorm statistics frozen on the second pass."""

import torch
from torch import nn

from hct.train import ASAM, cosine_lr, frozen_bn_stats


def test_asam_step_matches_its_definition():
    a = torch.tensor([3.0, 0.5, 1.0])
    w0 = torch.tensor([1.0, -2.0, 0.3])
    w = nn.Parameter(w0.clone())
    rho, eta, lr = 0.05, 0.01, 0.1

    def loss_fn(v):
        return 0.5 * (a * v * v).sum()

    optimizer = ASAM(torch.optim.SGD([w], lr=lr), rho=rho, eta=eta)
    loss_fn(w).backward()
    optimizer.first_step()
    t = w0.abs() + eta
    g = a * w0
    e = rho * t * t * g / torch.linalg.vector_norm(t * g)
    torch.testing.assert_close(w.detach(), w0 + e)
    optimizer.zero_grad()
    loss_fn(w).backward()
    optimizer.second_step()
    torch.testing.assert_close(w.detach(), w0 - lr * a * (w0 + e))


def test_frozen_bn_stats_keep_running_statistics():
    bn = nn.BatchNorm2d(3).train()
    bn(torch.randn(4, 3, 5, 5))
    before = (bn.running_mean.clone(), bn.running_var.clone(), bn.num_batches_tracked.clone())
    with frozen_bn_stats(bn):
        bn(torch.randn(4, 3, 5, 5) * 3 + 1)
    for saved, now in zip(before, (bn.running_mean, bn.running_var, bn.num_batches_tracked)):
        assert torch.equal(saved, now)
    assert bn.momentum == 0.1


def test_cosine_schedule():
    assert cosine_lr(0, 100, 1.0) == 1.0
    assert abs(cosine_lr(50, 100, 1.0) - 0.5) < 1e-12
    assert cosine_lr(100, 100, 1.0) < 1e-12
