"""A cheap, smooth, real-arithmetic Voigt function H(a, v) normalised to H(0, 0) ≈ 1.

Why not the complex Faddeeva function: real arithmetic is several times faster on CPU and
trivially differentiable in forward mode. The form below (Gaussian core + a Lorentzian
term that vanishes at line centre and has the exact a/(√π v²) asymptote) was fitted to
scipy's `wofz` for 1e-3 ≤ a ≤ 0.4: max relative error 8.2 %, exact far wings, which is
what carries the gravity signal (pressure-broadened wings)."""

from __future__ import annotations

import math

import torch

_G, _P, _R = 0.949454, 3.004225, 2.824905
_INV_SQRT_PI = 1.0 / math.sqrt(math.pi)


def voigt_h(a: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
    """H(a, v) with broadcasting; a ≥ 0 damping parameter, v offset in Doppler widths."""
    v2 = v * v
    e = torch.exp(-v2)
    core = e / (1.0 + _G * a)
    wing = a * _INV_SQRT_PI * (1.0 - e) * (v2 + _P) / (v2 * v2 + _R)
    return core + wing


def voigt_h_grads(a: torch.Tensor, v2: torch.Tensor
                  ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """(H, ∂H/∂a, ∂H/∂(v²)) of `voigt_h`, for the analytic forward-mode rule in synth."""
    e = torch.exp(-v2)
    den = 1.0 / (v2 * v2 + _R)
    rat = (v2 + _P) * den
    drat = (1.0 - 2.0 * v2 * rat) * den          # d rat / d(v²)
    ga = 1.0 / (1.0 + _G * a)
    lor = _INV_SQRT_PI * (1.0 - e) * rat
    h = e * ga + a * lor
    h_a = -_G * e * ga * ga + lor
    h_v2 = -e * ga + a * _INV_SQRT_PI * (e * rat + (1.0 - e) * drat)
    return h, h_a, h_v2
