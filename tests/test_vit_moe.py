"""The ViT's mixture-of-experts head (issue 13): it starts as the plain linear head, its
experts learn what one linear head cannot, and end to end it trains at least as fast as
the linear head (the first version sat at the mean predictor's loss)."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn as nn
import torch.nn.functional as F

from engine.models.vit.estimator import SpecViTRegressor
from engine.models.vit.model import SpecViT, ViTConfig, _init_weights
from engine.models.vit.moe_head import MoEHead, load_balancing_loss

pytestmark = pytest.mark.usefixtures("torch_one_thread")   # conftest


def _piecewise(n: int, d: int = 16, seed: int = 0):
    """y = 2·x1 where x0 > 0, −2·x2 elsewhere (z-scored): no linear function fits it
    (the best linear fit leaves half the variance)."""
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(n, d, generator=g)
    y = torch.where(x[:, 0] > 0, 2 * x[:, 1], -2 * x[:, 2]).unsqueeze(1)
    return x, (y - y.mean()) / y.std()


def _train_head(head: nn.Module, x, y, steps: int = 600, aux: float = 0.01) -> float:
    torch.manual_seed(1)
    opt = torch.optim.AdamW(head.parameters(), lr=3e-3, weight_decay=0.0)
    for _ in range(steps):
        i = torch.randint(0, len(x), (128,))
        loss = F.mse_loss(head(x[i]), y[i]) + aux * getattr(head, "aux_loss", 0.0)
        opt.zero_grad()
        loss.backward()
        opt.step()
    with torch.no_grad():
        return float(F.mse_loss(head(x), y))


def _moe(d: int, n_out: int = 1, k: int = 4) -> MoEHead:
    torch.manual_seed(0)
    head = MoEHead(d, n_out, k)
    head.apply(_init_weights)       # what SpecViT does to every Linear first
    head.reset_parameters()
    return head


def test_moe_head_at_init_is_the_shared_linear_head_and_its_experts_get_gradient():
    head = _moe(32, n_out=3)
    h = torch.randn(20, 32)
    out = head(h)
    assert torch.equal(out, head.shared(h))
    out.pow(2).sum().backward()
    for e in head.experts:      # zero output layer, but a gradient to grow from
        assert e[2].weight.grad.abs().max() > 0
    model = SpecViT(ViTConfig(n_pixels=256, patch_size=16, stride=16, hidden=32, layers=1,
                              heads=4, head="moe"))
    assert all(float(e[2].weight.detach().abs().max()) == 0.0 for e in model.head.experts)
    first = model.head.experts[0][0].weight.detach()            # He init, not the blocks' 0.02
    assert float(first.std()) == pytest.approx((2 / 32) ** 0.5, rel=0.15)


def test_moe_head_learns_a_piecewise_target_a_linear_head_cannot():
    x, y = _piecewise(4000)
    linear = nn.Linear(16, 1)
    linear.apply(_init_weights)
    mse_linear = _train_head(linear, x, y)
    mse_moe = _train_head(_moe(16), x, y)
    assert mse_linear > 0.4                 # the best linear fit: ~0.5
    assert mse_moe < 0.15


def test_load_balancing_loss_is_one_when_balanced_and_k_when_collapsed():
    k = 4
    balanced = torch.eye(k).repeat(5, 1)
    collapsed = torch.zeros(20, k)
    collapsed[:, 2] = 1.0
    assert float(load_balancing_loss(balanced)) == pytest.approx(1.0)
    assert float(load_balancing_loss(collapsed)) == pytest.approx(k)


def _spectra(n: int, seed: int = 0):
    """Toy spectra: four lines whose depth and width follow log g, at a noise (σ = 0.03)
    that makes the signal weak per pixel, as on the default data."""
    rng = np.random.default_rng(seed)
    g = rng.uniform(1.0, 5.0, n)
    x = np.arange(256)
    flux = np.ones((n, 256))
    for c, a in [(40, 0.08), (100, 0.05), (170, 0.1), (220, 0.04)]:
        flux -= a * (0.5 + 0.2 * g[:, None]) * np.exp(
            -0.5 * ((x - c) / (2.0 + 0.6 * g[:, None])) ** 2)
    return flux.astype(np.float32), np.full((n, 256), 0.03, np.float32), g


def test_moe_vit_training_loss_falls_like_the_linear_vit():
    """Measured (torch 2.x, CPU, seed 3): train loss per epoch, linear head 1.01 0.60 0.30
    0.28 0.21 0.18; this MoE head 1.04 0.92 0.47 0.38 0.29 0.26; the first MoE head
    (experts only, 0.02 init) 1.01 0.97 0.77 0.56 0.44 0.41 -- which these bounds fail."""
    flux, err, g = _spectra(512)
    losses = {}
    for head in ("linear", "moe"):
        est = SpecViTRegressor(patch_size=16, hidden=32, layers=2, heads=4, dropout=0.0,
                               attn_dropout=0.0, lr=1e-3, weight_decay=0.01, batch_size=32,
                               epochs=6, warmup_frac=0.05, min_lr=1e-5, device="cpu",
                               seed=3, head=head).fit(flux, g, error=err)
        losses[head] = [h["train_loss"] for h in est.history_]
    assert losses["linear"][-1] < 0.6, losses          # the toy is learnable in 6 epochs
    assert losses["moe"][2] < 0.6, losses             # left the mean predictor early
    assert losses["moe"][-1] < 0.35, losses
