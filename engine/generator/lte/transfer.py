"""LTE formal solution for the emergent flux of a plane-parallel atmosphere, batched over
stars × layers × wavelengths and smooth in θ (so `torch.func.jacfwd` works through it).

Optical depth: τ_λ(d) = ∫ χ_λ dRHOX with χ per gram, integrated by the trapezoid rule in
ln RHOX (χ·RHOX is close to a power law between layers), plus χ_0·RHOX_0 above the top.
Intensity along μ with a source function S = B_λ(T) that is linear in τ between layers
(the standard "linear short-characteristics" integral, exact for piecewise-linear S), a
constant S_0 above the top layer and the diffusion approximation below the deepest:

    I(μ) = S_0 (1 − e^{−τ_0/μ}) + Σ_d e^{−τ_d/μ} [S_d (1 − e^{−x}) + (S_{d+1} − S_d) g(x)]
           + e^{−τ_D/μ} (S_D + μ dS/dτ|_D),     x = Δτ_d/μ,  g(x) = (1 − (1+x)e^{−x})/x.

The sum telescopes (Σ S_d(e_d − e_{d+1}) − Σ ΔS_d e_{d+1} = S_0 e_0 − S_D e_D), so the same
integral is evaluated as

    I(μ) = S_0 + Σ_d ΔS_d e_d φ(x_d) + μ e_D dS/dτ|_D,     φ(x) = (1 − e^{−x})/x = −expm1(−x)/x,

a sum of non-negative terms where S grows with depth: no cancellation, no small-x series,
and a third of the elementwise passes over the (B, D, N) arrays (the cost of the model).
Flux F = 2π ∫ I μ dμ by Gauss–Legendre quadrature in μ on [0, 1] (3 points by default;
the factor π is dropped, as the spectra are normalised).

`flux_partials` and `depth_partials` give F with its exact partial derivatives with
respect to τ, T, χ and RHOX: the Fisher model's fused kernel (fused.py) contracts them with
the tangents instead of carrying five tangents through every pass (docs/generator-v2.md,
Speed)."""

from __future__ import annotations

import numpy as np
import torch

N_MU = 3
C2 = 1.4387769e8          # hc/k in Å·K
PHI_SERIES_X = 0.01       # below: φ'(x) by its series (the closed form cancels)


def gauss_mu(n: int = N_MU) -> tuple[np.ndarray, np.ndarray]:
    x, w = np.polynomial.legendre.leggauss(n)
    return 0.5 * (x + 1.0), 0.5 * w


def _gauss_pairs(n: int) -> tuple[tuple[float, ...], ...]:
    """((μ, 2w) per node, Σ 2wμ) as Python floats: what flux_partials loops over (no numpy
    call inside it, so torch.compile traces it without a graph break)."""
    mus, ws = gauss_mu(n)
    return tuple((float(m), 2.0 * float(w)) for m, w in zip(mus, ws)), float(np.sum(2.0 * ws * mus))


_GAUSS = {N_MU: _gauss_pairs(N_MU)}


def optical_depth(chi: torch.Tensor, rhox: torch.Tensor) -> torch.Tensor:
    """χ (B, D, N) per gram, RHOX (B, D) → τ (B, D, N)."""
    y = chi * rhox[..., None]
    half_dln = 0.5 * torch.diff(torch.log(rhox), dim=1)[..., None]
    inc = (y[:, 1:] + y[:, :-1]) * half_dln
    return torch.cumsum(torch.cat([y[:, :1], inc], dim=1), dim=1)


def planck(wave: torch.Tensor, scale: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
    """B_λ(T) in the model's units: scale (N,) / expm1(hc/λkT), T (B, D) → (B, D, N)."""
    return scale / torch.expm1(C2 / (wave * t[..., None]))


def _bottom_slope(tau: torch.Tensor, source: torch.Tensor) -> torch.Tensor:
    """dS/dτ below the deepest layer, over the last two intervals: robust when the deepest
    step is tiny (monotone_rhox floor)."""
    return (source[:, -1] - source[:, -3]) / (tau[:, -1] - tau[:, -3])


def emergent_flux(tau: torch.Tensor, source: torch.Tensor, n_mu: int = N_MU) -> torch.Tensor:
    """τ, S (B, D, N) → F (B, N) (units of S; 2∫Iμdμ)."""
    # the nodes as Python floats, no numpy call here: a numpy call inside was a
    # torch.compile graph break that left the whole formal solution eager
    pairs, w_sum = _GAUSS[n_mu] if n_mu in _GAUSS else _gauss_pairs(n_mu)
    dtau = torch.diff(tau, dim=1)
    ds = torch.diff(source, dim=1)
    k = None                                    # Σ_μ 2wμ e_d φ(x_d)     (B, D-1, N)
    a = 0.0                                     # Σ_μ 2wμ² e_D           (B, N)
    for mu, w2 in pairs:
        m = -1.0 / mu
        xn = dtau * m                           # −x
        p = torch.exp(tau[:, :-1] * m) * (torch.expm1(xn) / xn)
        wt = w2 * mu
        k = p * wt if k is None else k + p * wt
        a = a + (wt * mu) * torch.exp(tau[:, -1] * m)
    return source[:, 0] * w_sum + (ds * k).sum(1) + _bottom_slope(tau, source) * a


def _phi_and_slope(xn: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(φ(x), φ'(x)) for xn = −x < 0: φ' = (e^{−x} − φ)/x, its series −½ + x/3 − x²/8
    where x < PHI_SERIES_X (there the closed form cancels; the series' error x³/30 is
    < 1e-7 of φ')."""
    phi = torch.expm1(xn) / xn
    series = (xn * 0.125 - 1.0 / 3.0) * xn - 0.5
    return phi, torch.where(xn > -PHI_SERIES_X, series, (phi - torch.exp(xn)) / xn)


def flux_partials(tau: torch.Tensor, t: torch.Tensor, wave: torch.Tensor, scale: torch.Tensor,
                  n_mu: int = N_MU, phi=None) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """(F (B, N), ∂F/∂τ (B, D, N), ∂F/∂T (B, D, N)) of
    `emergent_flux(tau, planck(wave, scale, t))` (differentiating I(μ) = S_0 + Σ ΔS_d P_d
    + μ e_D s_D, P_d = e_d φ(x_d), term by term). `phi(xn) -> (φ, φ')`: `_phi_and_slope`
    by default; the compiled Jacobian kernel passes one without expm1 (lte/jacobian.py)."""
    phi_fn = _phi_and_slope if phi is None else phi
    pairs, w_sum = _GAUSS[n_mu] if n_mu in _GAUSS else _gauss_pairs(n_mu)
    xw = C2 / (wave * t[..., None])
    em1 = torch.expm1(xw)
    source = scale / em1
    dtau = torch.diff(tau, dim=1)
    ds = torch.diff(source, dim=1)
    k = q = r = None          # Σ 2wμ P_d,  Σ 2w e_d φ'(x_d),  Σ 2w P_d    (B, D-1, N)
    a0 = a1 = 0.0             # Σ 2wμ e_D,  Σ 2wμ² e_D                      (B, N)
    for mu, w2 in pairs:
        m = -1.0 / mu
        e = torch.exp(tau[:, :-1] * m)
        phi, dphi = phi_fn(dtau * m)
        p = e * phi
        eq = e * dphi
        k = p * (w2 * mu) if k is None else k + p * (w2 * mu)
        r = p * w2 if r is None else r + p * w2
        q = eq * w2 if q is None else q + eq * w2
        e_d = torch.exp(tau[:, -1] * m)
        a0 = a0 + (w2 * mu) * e_d
        a1 = a1 + (w2 * mu * mu) * e_d
    delta = tau[:, -1] - tau[:, -3]
    slope = (source[:, -1] - source[:, -3]) / delta
    # ∂F/∂S_j = K_{j−1} − K_j (K_{−1} = Σ2wμ, K_{D−1} = 0) + the bottom-slope terms
    kp = torch.nn.functional.pad(k, (0, 0, 1, 1))
    kp[:, 0] = w_sum
    g_s = kp[:, :-1] - kp[:, 1:]
    g_s[:, -1] += a1 / delta
    g_s[:, -3] -= a1 / delta
    # ∂P_d/∂τ_d = −(e_d/μ)(φ + φ'), ∂P_d/∂τ_{d+1} = e_d φ'/μ; times 2wμ and summed over μ
    dq = ds * q
    g_tau = torch.nn.functional.pad(dq, (0, 0, 1, 0)) - torch.nn.functional.pad(ds * r + dq, (0, 0, 0, 1))
    g_tau[:, -1] += -slope * a0 - slope * a1 / delta
    g_tau[:, -3] += slope * a1 / delta
    # dS/dT = S · x e^x / expm1(x) / T
    g_t = g_s * source * xw * (1.0 + 1.0 / em1) / t[..., None]
    flux = source[:, 0] * w_sum + (ds * k).sum(1) + slope * a1
    return flux, g_tau, g_t


def depth_partials(chi: torch.Tensor, rhox: torch.Tensor, g_tau: torch.Tensor
                   ) -> tuple[torch.Tensor, torch.Tensor]:
    """Pull ∂F/∂τ (B, D, N) back through `optical_depth`: (∂F/∂χ (B, D, N), ∂F/∂RHOX
    (B, D, N)). τ_d = y_0 + Σ_{k<d} (y_k + y_{k+1}) h_k with y = χ·RHOX, h_k = ½Δln RHOX_k,
    so with R_j = Σ_{d≥j} ∂F/∂τ_d: ∂F/∂y_j = [j=0] R_0 + h_j R_{j+1} + h_{j−1} R_j."""
    pad = torch.nn.functional.pad
    y = chi * rhox[..., None]
    h = 0.5 * torch.diff(torch.log(rhox), dim=1)[..., None]            # (B, D-1, 1)
    rc = torch.flip(torch.cumsum(torch.flip(g_tau, (1,)), 1), (1,))   # R_j
    g_y = pad(h * rc[:, 1:], (0, 0, 0, 1)) + pad(h * rc[:, 1:], (0, 0, 1, 0))
    g_y[:, 0] += rc[:, 0]
    g_h = (y[:, 1:] + y[:, :-1]) * rc[:, 1:]                          # ∂F/∂h_k
    g_rhox = g_y * chi + 0.5 * (pad(g_h, (0, 0, 1, 0)) - pad(g_h, (0, 0, 0, 1))) / rhox[..., None]
    return g_y * rhox[..., None], g_rhox
