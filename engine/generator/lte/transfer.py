"""LTE formal solution for the emergent flux of a plane-parallel atmosphere, batched over
stars × layers × wavelengths and smooth in θ (so `torch.func.jacfwd` works through it).

Optical depth: τ_λ(d) = ∫ χ_λ dRHOX with χ per gram, integrated by the trapezoid rule in
ln RHOX (χ·RHOX is close to a power law between layers), plus χ_0·RHOX_0 above the top.
Intensity along μ with a source function S = B_λ(T) that is linear in τ between layers
(the standard "linear short-characteristics" integral, exact for piecewise-linear S):

    I(μ) = S_0 (1 − e^{−τ_0/μ}) + Σ_d e^{−τ_d/μ} [S_d (1 − e^{−x}) + (S_{d+1} − S_d) g(x)]
           + e^{−τ_D/μ} (S_D + μ dS/dτ|_D),     x = Δτ_d/μ,  g(x) = (1 − (1+x)e^{−x})/x

(the last term is the diffusion approximation below the deepest layer). Flux
F = 2π ∫ I μ dμ by Gauss–Legendre quadrature in μ on [0, 1] (3 points by default; the
factor π is dropped, as the spectra are normalised)."""

from __future__ import annotations

import numpy as np
import torch

N_MU = 3


def gauss_mu(n: int = N_MU) -> tuple[np.ndarray, np.ndarray]:
    x, w = np.polynomial.legendre.leggauss(n)
    return 0.5 * (x + 1.0), 0.5 * w


def optical_depth(chi: torch.Tensor, rhox: torch.Tensor) -> torch.Tensor:
    """χ (B, D, N) per gram, RHOX (B, D) → τ (B, D, N)."""
    y = chi * rhox[..., None]
    dln = torch.diff(torch.log(rhox), dim=1)[..., None]
    inc = 0.5 * (y[:, 1:] + y[:, :-1]) * dln
    return torch.cat([y[:, :1], y[:, :1] + torch.cumsum(inc, dim=1)], dim=1)




def emergent_flux(tau: torch.Tensor, source: torch.Tensor, n_mu: int = N_MU) -> torch.Tensor:
    """τ, S (B, D, N) → F (B, N) (units of S; 2∫Iμdμ)."""
    mus, ws = gauss_mu(n_mu)
    dtau = torch.diff(tau, dim=1)
    ds = torch.diff(source, dim=1)
    # over the last two intervals: robust when the deepest step is tiny (monotone_rhox floor)
    slope_bottom = (ds[:, -1] + ds[:, -2]) / (dtau[:, -1] + dtau[:, -2])
    flux = 0.0
    for mu, w in zip(mus, ws):
        mu = float(mu)
        # one exponential per layer: e^{−x_d} = e_{d+1}/e_d, so e_d(1 − e^{−x}) = e_d − e_{d+1}
        # and e_d·g(x) = (e_d − e_{d+1} − x e_{d+1})/x (its series where x < 0.02)
        e = torch.exp(-tau / mu)
        e0, e1 = e[:, :-1], e[:, 1:]
        x = dtau / mu
        de = e0 - e1
        small = x < 0.02
        xs = torch.where(small, torch.ones_like(x), x)
        eg = torch.where(small, e0 * x * (0.5 - x * (1.0 / 3.0 - x * 0.125)), (de - x * e1) / xs)
        inner = (source[:, :-1] * de + ds * eg).sum(1)
        top = source[:, 0] * -torch.expm1(-tau[:, 0] / mu)
        bottom = e[:, -1] * (source[:, -1] + mu * slope_bottom)
        flux = flux + (2.0 * float(w) * mu) * (top + inner + bottom)
    return flux
