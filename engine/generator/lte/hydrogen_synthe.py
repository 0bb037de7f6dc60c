"""A BOSZ-like (Kurucz SYNTHE) treatment of the Paschen lines — an OPTION for measurement
(`ForwardModel(hydrogen="synthe")`, bench/hydrogen_synthe_variant.py); generator 2.2's
default (`hydrogen="hm"`: Hummer–Mihalas w(n_u), unit-area Stark profile, dissolved n = 3
pseudo-continuum; hydrogen.py) is unchanged and no generator version depends on this file.

What SYNTHE does for a hydrogen line n → m (Castelli's SYNTHE as used for BOSZ: synthe.for,
the hydrogen-line branch and FUNCTION HPROF4, in github.com/dobos/kurucz-synthe; facts only,
written here from the formulas; docs/generator-v2.md, "SYNTHE's Paschen lines"):

* no occupation probabilities: the line opacity is gf × the LTE n = 3 population × profile;
* an Inglis–Teller merge per layer: n_merge = 1600/N_e^{2/15} − 1.5 ("EMPIRICAL"), the line
  opacity is zero blueward of λ_con = λ(3 → n_merge) (vacuum; never blueward of the n = 81
  line) and rises linearly from 0 at λ_con to 1 at λ_tail, 500 cm⁻¹ redward
  (`merge_ramp`): a wavelength factor applied to every line of the series;
* each line's wings stop at its neighbours' centres (λ(m+1) … λ(m−1)); SYNTHE also stops
  a wing earlier where the m ∓ 2 line's profile beyond m ∓ 0.8 exceeds it — left out here;
* HPROF4's profile (Peterson's, after Griem 1960; the same formulas as Turbospectrum's
  HLINOP/HPROFL), per Å with β = |Δλ|/(K_nm F0), F0 = 1.25e-9 N_e^{2/3}:
  Stark = [S(β)(1 + FNS(β)) + F(β)] / (K_nm F0) — the ion quasi-static profile S of unit
  area, the quasi-static electrons as the factor 1 + FNS, FNS = (P1 + 0.03 √y1)/(P1 + 1),
  P1 = (0.9 y1)², y1 = C1 β, and the electron-impact core F = Γ/π/(Γ² + β²) (Γ from the
  Vidal–Cooper–Smith-type E1 expression below) ADDED, so the profile's area exceeds 1
  (the "Kurucz/Peterson excess"). Doppler: a Gaussian (cut at 7 Doppler widths). Inside
  the largest half width (Doppler Δλ_D or Stark K_nm F0) only the dominant of the two
  profiles; outside, their sum. The small Lorentzian terms (resonance, van der Waals by
  He/H2, radiative) are left out (≪ Stark for Paschen lines in these stars).
  S(β) is Griem's tabulated S(β, P) in SYNTHE (SOFBET); here the unit-area closed form
  S = 1/(N w (1 + (β/w)^{5/2})), N = 2.6424, w = (1.5 N)^{2/3} = 2.50, whose far wing is
  the Holtsmark ion asymptote 1.5 β^{−5/2} (an approximation: no shielding/correlation P).
* the continuum: ATLAS's HOP adds n = 3 bound-free only blueward of the Paschen edge; no
  dissolved-level pseudo-continuum (`ForwardModel` drops hydrogen.kappa_dissolved_n3 in
  this mode)."""

from __future__ import annotations

import math

import numpy as np
import torch

RYD_H_CM = 109677.576          # Rydberg for H (cm⁻¹), SYNTHE's EHYD
LIMIT_N3_CM = 12186.462        # n = 3 ionisation (cm⁻¹), SYNTHE's CONTH(3)
TAIL_CM = 500.0                # width of the merge ramp (cm⁻¹)
N_SHIFT = 81                   # SYNTHE's WSHIFT level: λ_con never blueward of 3 → 81
F0_CONST = 1.25e-9             # F0 = 1.25e-9 N_e^{2/3} (Kurucz's Holtsmark field)
ION_W = (1.5 * 2.0 * math.pi / (2.5 * math.sin(math.pi / 2.5))) ** (2.0 / 3.0)
ION_N = 2.0 * math.pi / (2.5 * math.sin(math.pi / 2.5))
SQRT_PI = math.sqrt(math.pi)


def paschen_wave(n_up) -> np.ndarray:
    """Vacuum λ (Å) of 3 → n_up (Rydberg formula, SYNTHE's level energies for n ≥ 9)."""
    n = np.asarray(n_up, np.float64)
    return 1e8 / (LIMIT_N3_CM - RYD_H_CM / n ** 2)


def merge_ramp(lam: torch.Tensor, n_e: torch.Tensor) -> torch.Tensor:
    """SYNTHE's merge factor (B, D, N) on vacuum wavelengths lam (N,) Å for electron
    densities n_e (B, D) cm⁻³: 0 blueward of λ_con, linear to 1 at λ_tail."""
    n_merge = 1600.0 / torch.pow(n_e, 2.0 / 15.0) - 1.5
    nu_con = torch.clamp(LIMIT_N3_CM - RYD_H_CM / n_merge ** 2, min=1e-3)
    nu_shift = LIMIT_N3_CM - RYD_H_CM / N_SHIFT ** 2
    nu_con = torch.minimum(nu_con, torch.full_like(nu_con, nu_shift))  # λ_con ≥ λ_shift
    w_con = 1e8 / nu_con
    w_tail = 1e8 / torch.clamp(nu_con - TAIL_CM, min=1e-3)
    w_tail = torch.minimum(w_tail, 2.0 * w_con)
    x = (lam.to(n_e.dtype) - w_con[..., None]) / (w_tail - w_con)[..., None]
    return torch.clamp(x, 0.0, 1.0)


def exp1(x: torch.Tensor) -> torch.Tensor:
    """E1(x), x > 0 (Abramowitz & Stegun 5.1.53 below 1, 5.1.56 above; |error| < 5e-5
    relative), the role of SYNTHE's VCSE1F."""
    xs = torch.clamp(x, min=1e-30)
    lo = (-torch.log(xs) - 0.57721566 + xs * (0.99999193 + xs * (-0.24991055 + xs * (
        0.05519968 + xs * (-0.00976004 + xs * 0.00107857)))))
    xb = torch.clamp(x, min=1.0)
    hi = (torch.exp(-torch.clamp(xb, max=80.0)) / xb * (xb * xb + 2.334733 * xb + 0.250621)
          / (xb * xb + 3.330657 * xb + 1.681534))
    return torch.where(x < 1.0, lo, hi)


def stark_profile(dl: torch.Tensor, t: torch.Tensor, n_e: torch.Tensor, lam: torch.Tensor,
                  n_lo: torch.Tensor, n_up: torch.Tensor, k_nm: torch.Tensor) -> torch.Tensor:
    """HPROF4's Stark part per Å, (B, D, L, W): dl (L, W) Å from line centre, t and n_e
    (B, D), per line lam (Å), n_lo, n_up, k_nm (L,) (Å per cgs field)."""
    lay = lambda x: x[..., None, None]
    t4, ne = lay(t), lay(n_e)
    f0 = F0_CONST * torch.pow(ne, 2.0 / 3.0)
    k = k_nm[:, None]
    kf = k * f0                                                   # Stark unit, Å
    beta = torch.abs(dl) / kf
    m2, n2 = (n_up ** 2)[:, None], (n_lo ** 2)[:, None]
    gnm = (m2 - n2) / (m2 * n2)
    kw = k / lam[:, None]
    c1con, c2con = kw * gnm * (m2 - n2), kw * kw
    y1s = torch.pow(t4 / 1e4, 0.3) / torch.pow(ne, 1.0 / 6.0)
    y1b = 2.0 / (1.0 + 0.012 / t4 * torch.sqrt(ne / t4))
    wty1 = 1.0 / (1.0 + ne / 1e13)                                # Y1WHT = 1e13 (m − n > 3)
    y1scal = 320.0 * y1s * wty1 + y1b * (1.0 - wty1)
    c1 = f0 * 78940.0 / t4 * c1con * y1scal
    c2 = f0 * f0 / 5.96e-23 / ne * c2con
    g1 = 6.77 * torch.sqrt(c1)
    gcon1 = 0.2 + 0.09 * torch.sqrt(t4 / 1e4) / (1.0 + ne / 1e13)
    gcon2 = 0.2 / (1.0 + ne / 1e15)
    gnot = g1 * torch.clamp(0.2114 + torch.log(torch.sqrt(c2) / c1), min=0.0) * (1 - gcon1 - gcon2)
    y1, y2 = c1 * beta, c2 * beta * beta
    gam = (g1 * (0.5 * torch.exp(-torch.clamp(y1, max=80.0)) + exp1(y1) - 0.5 * exp1(y2))
           * (1.0 - gcon1 / (1.0 + (90.0 * y1) ** 3) - gcon2 / (1.0 + 2000.0 * y1)))
    gam = torch.where((y2 <= 1e-4) & (y1 <= 1e-5), gnot.expand_as(gam), gam)
    gam = torch.where(gam <= 1e-20, torch.zeros_like(gam), gam)
    impact = gam / math.pi / (gam * gam + beta * beta)
    ion = 1.0 / (ION_N * ION_W * (1.0 + torch.pow(beta / ION_W, 2.5)))
    p1 = (0.9 * y1) ** 2
    fns = (p1 + 0.03 * torch.sqrt(y1)) / (p1 + 1.0)
    return (ion * (1.0 + fns) + impact) / kf


def hprof4(dl, t, n_e, dlam_d, lam, n_lo, n_up, k_nm) -> torch.Tensor:
    """HPROF4-like total profile per Å (B, D, L, W): Doppler width dlam_d (B, D, L) Å;
    the core/wing logic of SYNTHE (only the dominant profile within the largest half
    width, Doppler + Stark outside)."""
    stark = stark_profile(dl, t, n_e, lam, n_lo, n_up, k_nm)
    dd = dlam_d[..., None]
    d = torch.abs(dl) / dd
    dop = torch.where(d <= 7.0, torch.exp(-d * d) / (SQRT_PI * dd), torch.zeros_like(d))
    kf = (k_nm[:, None] * F0_CONST * torch.pow(n_e, 2.0 / 3.0)[..., None, None])
    core = torch.abs(dl) <= torch.maximum(dd, kf)
    dop_wins = dd >= kf
    in_core = torch.where(dop_wins, dop, stark)
    return torch.where(core, in_core, dop + stark)


def neighbour_mask(lam: np.ndarray, n_up: np.ndarray, dl: np.ndarray) -> np.ndarray:
    """(L, W) True where a sample lies between the line's neighbours' centres,
    λ(m + 1) < λ < λ(m − 1) (SYNTHE's WLPLUS1 / WLMINUS1)."""
    blue = paschen_wave(n_up + 1) - paschen_wave(n_up)
    red = paschen_wave(n_up - 1) - paschen_wave(n_up)
    return (dl > blue[:, None]) & (dl < red[:, None])
