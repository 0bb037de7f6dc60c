"""H⁻ bound-free + free-free continuum opacity per neutral H atom (Gray 2005,
eqs. 8.11–8.13). It is the only continuum opacity that matters for T_eff ≤ 6000 K at
7100–8850 Å, and κ ∝ P_e is what turns surface gravity into line-to-continuum ratios."""

from __future__ import annotations

import torch

_A_BF = (1.99654, -1.18267e-5, 2.64243e-6, -4.40524e-10, 3.23992e-14, -1.39568e-18,
         2.78701e-23)


def _poly(coeffs, x):
    out = torch.zeros_like(x)
    for c in reversed(coeffs):
        out = out * x + c
    return out


def kappa_hminus(lam: torch.Tensor, t: torch.Tensor, log_pe: torch.Tensor) -> torch.Tensor:
    """κ_c (cm² per neutral H) at wavelengths lam (N,) Å for layers t, log_pe (B,) → (B, N)."""
    lam = lam.to(t.dtype)[None, :]
    theta = (5040.0 / t)[:, None]
    pe = torch.pow(10.0, log_pe)[:, None]
    alpha_bf = 1e-18 * _poly(_A_BF, lam)
    stim = 1.0 - torch.pow(10.0, -theta * 12398.4 / lam)
    k_bf = 4.158e-10 * alpha_bf * pe * theta ** 2.5 * torch.pow(10.0, 0.754 * theta) * stim
    loglam = torch.log10(lam)
    f0 = _poly((-2.2763, -1.6850, 0.76661, -0.053346), loglam)
    f1 = _poly((15.2827, -9.2846, 1.99381, -0.142631), loglam)
    f2 = _poly((-197.789, 190.266, -67.9775, 10.6913, -0.625151), loglam)
    lt = torch.log10(theta)
    k_ff = 1e-26 * pe * torch.pow(10.0, f0 + f1 * lt + f2 * lt * lt)
    return k_bf + k_ff
