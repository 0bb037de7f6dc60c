"""Depth structure of the photosphere from real model atmospheres: the atmosnet network
(Nidever & Ting; MIT) trained on the C3K grid of ATLAS12 Kurucz models, converted once to
`data/atmosnet_cool.npz` by `data/make_atmosnet.py` (valid T_eff 2500–8000 K, log g
−1…5.5, [Fe/H] −4…+1.5, [α/Fe] −0.2…+0.6; [α/M] = −0.25 is a 0.05 dex extrapolation).

Why a network and not power laws: T(τ), P_gas(τ) and P_e(τ) over depth are what make
line cores, wings and the continuum respond to gravity differently (depth of formation,
ionisation balance, H⁻ opacity); the network reproduces the real models (checked against
the Kurucz solar model in tests/test_atmosphere.py: T within 1 %, log P_gas and log N_e
within 0.03 dex over log τ_Ross −5…+1) and is a smooth closed-form function of θ, so the
Jacobian stays exact.

Decoding (verified, not taken from the package): each network outputs log10 of its
Kurucz-deck column at 80 depths, log τ_Ross = −6.875 + 0.125·k. atmosnet 1.0.1's own
`AtmosModel.__call__` applies `np.exp` to these outputs, which is inconsistent with the
physics: with 10**output the deck is hydrostatic (P_gas = g·RHOX to ≤ 5 %), the
Rosseland depth ∫ABROSS dRHOX lands on the −6.875 + 0.125·k grid, and T, P, N_e agree
with ATLAS9's solar model; with exp they do not (T ≈ 35 K at the top). Columns: RHOX
(g cm⁻²), T (K), P_gas (dyn cm⁻²), XNE (electrons cm⁻³), ABROSS (cm² g⁻¹); the package's
columns 5–7 (not shipped) behave as ACCRAD, FLXCNV and VCONV."""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
import torch

ATMOSNET_PATH = Path(__file__).resolve().parents[3] / "data" / "atmosnet_cool.npz"
N_DEPTHS = 80
LOG_TAU_ROSS0, LOG_TAU_ROSS_STEP = -6.875, 0.125
# Layers used by the formal solution (25): log τ_Ross −6.0 … −4.0 and +0.5 … +2.0 every
# 0.5 dex, −3.5 … +0.25 every 0.25 dex. Why: CaT cores form near log τ ≈ −5…−6, the red
# continuum near 0…+1, and the weak and mid-strength lines at −3…0, where a 0.5 dex grid
# (17 layers, generator 2.0) made every line ~15 % too weak: on the same lines and model
# atmospheres Turbospectrum's EWs are 0.78–0.86× matched by 17 layers, 0.90–0.93× by these
# 25 (= 33 layers at 0.25 dex everywhere), 0.93–0.96× by 65 (0.125 dex) — trapezoidal τ and
# a linear-in-τ source over 0.5 dex steps (docs/generator-v2.md, "Line strengths"). The
# normalised spectrum's rms moves only 0.004 (integrated line absorption is 2–8 % of the
# flux), which is why a spectrum-rms test had passed the 17-layer grid.
SYNTH_ROWS = tuple(range(7, 27, 4)) + tuple(range(27, 59, 2)) + tuple(range(59, 72, 4))
K_B = 1.380649e-16
M_H = 1.6735575e-24
HE_PER_H = 10 ** (10.93 - 12.0)        # Asplund et al. 2009 (not scaled with [M/H])
MEAN_MASS_PER_H = (1.0 + 4.0026 * HE_PER_H + 0.0185) * M_H   # + metals (Z/X ≈ 0.018)


def log_tau_ross(rows=None) -> np.ndarray:
    rows = np.arange(N_DEPTHS) if rows is None else np.asarray(rows)
    return LOG_TAU_ROSS0 + LOG_TAU_ROSS_STEP * rows


MIN_DLN_RHOX = 0.002     # smallest ln RHOX step between synthesis layers (legit: ≥ 0.01)
SOFT = 0.002


def monotone_rhox(log10_rhox: torch.Tensor) -> torch.Tensor:
    """RHOX (B, D) from the network's log10 RHOX with every ln step floored smoothly at
    MIN_DLN_RHOX (softplus, width 0.002). Why: near the box corners (e.g. 4390 K, log g
    2.1, [α/M] −0.245, an extrapolation) the network's deepest rows can step backwards,
    which would make τ decrease with depth and the formal solution NaN; the floor leaves
    every normal step ≥ 0.1 unchanged (< 1e-20; the smallest legitimate steps, 0.01 in the
    deepest layers of a metal-rich 6000 K giant, move by 0.4 %) and keeps the model smooth
    in θ."""
    ln_r = log10_rhox * math.log(10.0)
    step = torch.diff(ln_r, dim=1)
    step = MIN_DLN_RHOX + SOFT * torch.nn.functional.softplus((step - MIN_DLN_RHOX) / SOFT)
    return torch.exp(torch.cat([ln_r[:, :1], ln_r[:, :1] + torch.cumsum(step, dim=1)], dim=1))


@dataclass
class Structure:
    """Per star and layer (B, D): mass column RHOX [g cm⁻²], T [K], P_gas and P_e
    [dyn cm⁻²], N_e [cm⁻³], ρ [g cm⁻³], n_H (H nuclei) [cm⁻³]."""

    rhox: torch.Tensor
    t: torch.Tensor
    p_gas: torch.Tensor
    p_e: torch.Tensor
    n_e: torch.Tensor
    rho: torch.Tensor
    n_h: torch.Tensor


class Atmosphere(torch.nn.Module):
    """θ (B, ≥4) = (T_eff, log g, [M/H], [α/M], ...) → Structure on `rows` of the 80-depth
    atmosnet grid. Buffers are float32 weights cast to the module's dtype."""

    def __init__(self, rows=SYNTH_ROWS, path: Path = ATMOSNET_PATH,
                 columns: tuple[int, ...] = (0, 1, 2, 3)) -> None:
        super().__init__()
        z = np.load(path)
        cols = list(columns)
        rows = list(rows)
        self.rows = tuple(rows)
        t = lambda a: torch.as_tensor(np.asarray(a, dtype=np.float64))
        self.register_buffer("w0", t(z["w0"][cols]))
        self.register_buffer("b0", t(z["b0"][cols]))
        self.register_buffer("w1", t(z["w1"][cols]))
        self.register_buffer("b1", t(z["b1"][cols]))
        self.register_buffer("w2", t(z["w2"][cols][:, rows]))
        self.register_buffer("b2", t(z["b2"][cols][:, rows]))
        self.register_buffer("x_min", t(z["x_min"]))
        self.register_buffer("x_span", t(z["x_max"] - z["x_min"]))
        self.register_buffer("log_tau_ross", t(log_tau_ross(rows)))
        self.ranges = np.asarray(z["ranges"])

    def raw(self, theta: torch.Tensor) -> torch.Tensor:
        """log10 of the deck columns, (B, C, D): the network itself (two leaky-ReLU layers)."""
        x = (theta[:, :4] - self.x_min) / self.x_span - 0.5                 # (B, 4)
        h = torch.nn.functional.leaky_relu(torch.einsum("cnl,bl->bcn", self.w0, x) + self.b0, 0.01)
        h = torch.nn.functional.leaky_relu(torch.einsum("cmn,bcn->bcm", self.w1, h) + self.b1, 0.01)
        return torch.einsum("cdm,bcm->bcd", self.w2, h) + self.b2

    def forward(self, theta: torch.Tensor) -> Structure:
        lg = self.raw(theta)
        rhox = monotone_rhox(lg[:, 0])
        t, p_gas, n_e = (torch.pow(10.0, lg[:, i]) for i in (1, 2, 3))
        p_e = n_e * K_B * t
        n_heavy = p_gas / (K_B * t) - n_e            # nuclei (atoms + ions) per cm³
        n_h = n_heavy / (1.0 + HE_PER_H)
        return Structure(rhox, t, p_gas, p_e, n_e, n_h * MEAN_MASS_PER_H, n_h)



# H₂ dissociation constant log10 K_p = log10(P_H² / P_H₂) [dyn cm⁻²], Tsuji (1973, A&A 23,
# 411) polynomial in θ = 5040/T (checked: 7.73 at 5040 K against the statistical-mechanics
# value from D0 = 4.478 eV, B = 60.85 cm⁻¹, ω = 4401 cm⁻¹, 7.75)
H2_LOG_KP = (12.739, -5.1172, 1.2572e-1, -1.4149e-2, 6.3021e-4)


def with_molecular_hydrogen(s: Structure, log_rh: torch.Tensor) -> tuple[Structure, torch.Tensor]:
    """(structure with n_H and ρ counting the H nuclei in H₂, n(H I)/n_H), from the gas's
    particle density and the H ionisation ratio log10 n(H⁺)/n(H I) per layer.

    Why: in cool dwarfs a large part of the hydrogen is molecular in the layers where the
    lines form (≈ 40 % of H nuclei at 3300 K, log P_gas 4.5), which lowers n(H I) and with
    it the H⁻ continuum per gram by up to 1.35× (Turbospectrum's continuum, which has the
    full molecular equilibrium, against ours for the 4000 K / 4.6 benchmark dwarf): without
    H₂ every line of a cool dwarf is 15–25 % too weak, and the effect grows with pressure,
    i.e. with log g. Equations: N_part = P_gas/kT − N_e = n(H I) + n(H⁺) + n(H₂) + n(He)
    (metals ≪), n_H = n(H I)(1 + r) + 2 n(H₂), n(He) = y·n_H, n(H₂) = n(H I)²/K_n with
    K_n = K_p/kT: a quadratic in n(H I), solved in its cancellation-free form."""
    th = 5040.0 / s.t
    log_kp = H2_LOG_KP[4]
    for c in H2_LOG_KP[3::-1]:
        log_kp = log_kp * th + c
    k_n = torch.pow(10.0, log_kp) / (K_B * s.t)
    n_part = s.n_h * (1.0 + HE_PER_H)                 # Atmosphere counted every particle as a nucleus
    b = (1.0 + HE_PER_H) * (1.0 + torch.pow(10.0, log_rh))
    a = (1.0 + 2.0 * HE_PER_H) / k_n
    n_hi = 2.0 * n_part / (b + torch.sqrt(b * b + 4.0 * a * n_part))
    # n(H₂) = n(H I)·(n(H I)/K_n): n(H I)² alone overflows float32 (1e19² in cool dwarfs)
    n_h = n_hi * (1.0 + torch.pow(10.0, log_rh)) + 2.0 * n_hi * (n_hi / k_n)
    return replace(s, n_h=n_h, rho=n_h * MEAN_MASS_PER_H), n_hi / n_h
