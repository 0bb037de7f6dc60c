"""Continuum opacity per layer at 7100–8850 Å (cool stars: T_eff 3750–6000 K).

Sources (all per neutral H atom unless stated; λ in Å, θ = 5040/T):
* H⁻ bound-free and free-free — Gray (2005), eqs. 8.11–8.13 (John 1988 fits): the dominant
  opacity, ∝ P_e, which is how gravity reaches the line-to-continuum ratio;
* H I bound-free (Paschen continuum below the 8206 Å vacuum edge, Brackett above) and
  free-free — Gray eqs. 8.8 and 8.10 (hydrogenic, Gaunt factors 1), important only in the
  deepest, hottest layers;
* Rayleigh scattering on H I — Dalgarno's fit, Gray eq. 8.16;
* Thomson scattering on electrons, σ_T = 6.652e-25 cm² per electron.
Scattering is treated as absorption (source function = Planck): an LTE simplification,
small here because both scattering terms are ≲ 1 % of H⁻ at these wavelengths.

Not included: H₂ (and its effect on n(H I)), metal bound-free, H₂⁺ — below a few per cent in
this window for T_eff ≥ 3750 K."""

from __future__ import annotations

import torch

from engine.generator.opacity import _poly  # the same Horner evaluation as v1

_A_BF = (1.99654, -1.18267e-5, 2.64243e-6, -4.40524e-10, 3.23992e-14, -1.39568e-18,
         2.78701e-23)
CHI_H = 13.598            # eV
HC_EV_A = 12398.42        # hc in eV·Å
ALPHA0_H = 1.0449e-26     # Gray eq. 8.8 (λ in Å)
SIGMA_T = 6.6524587e-25
LOG10E = 0.4342944819


def kappa_hminus(lam: torch.Tensor, t: torch.Tensor, log_pe: torch.Tensor) -> torch.Tensor:
    """H⁻ bf + ff (cm² per neutral H) at wavelengths lam (N,) Å for temperatures t and
    log10 P_e of any shape S → S + (N,)."""
    lam = lam.to(t.dtype)
    theta = (5040.0 / t)[..., None]
    pe = torch.pow(10.0, log_pe)[..., None]
    alpha_bf = 1e-18 * _poly(_A_BF, lam)
    stim = 1.0 - torch.pow(10.0, -theta * HC_EV_A / lam)
    k_bf = 4.158e-10 * alpha_bf * pe * theta ** 2.5 * torch.pow(10.0, 0.754 * theta) * stim
    loglam = torch.log10(lam)
    f0 = _poly((-2.2763, -1.6850, 0.76661, -0.053346), loglam)
    f1 = _poly((15.2827, -9.2846, 1.99381, -0.142631), loglam)
    f2 = _poly((-197.789, 190.266, -67.9775, 10.6913, -0.625151), loglam)
    lt = torch.log10(theta)
    k_ff = 1e-26 * pe * torch.pow(10.0, f0 + f1 * lt + f2 * lt * lt)
    return k_bf + k_ff


def kappa_hydrogen(lam: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
    """H I bf + ff (cm² per neutral H), shape of t + (N,). The lowest level that can be
    photo-ionised at λ is n0 (3 below 8206 Å, 4 above): Gray eq. 8.8 sums n0…n0+2 explicitly
    and the rest of the series as an integral; plus the free-free term (eq. 8.10)."""
    lam = lam.to(t.dtype)
    theta = (5040.0 / t)[..., None]
    n0 = torch.floor(torch.sqrt(lam / 911.7633)) + 1.0            # (N,)
    lam3 = ALPHA0_H * lam ** 3
    bf = 0.0
    for k in range(3):
        n = n0 + k
        bf = bf + torch.pow(10.0, -theta * CHI_H * (1.0 - 1.0 / (n * n))) / n ** 3
    n3 = n0 + 3.0
    rest = LOG10E / (2.0 * theta * CHI_H) * (torch.pow(10.0, -theta * CHI_H * (1.0 - 1.0 / (n3 * n3)))
                                              - torch.pow(10.0, -theta * CHI_H))
    ff = LOG10E / (2.0 * theta * CHI_H) * torch.pow(10.0, -theta * CHI_H)
    stim = 1.0 - torch.pow(10.0, -theta * HC_EV_A / lam)
    return lam3 * (bf + rest + ff) * stim


def sigma_rayleigh_h(lam: torch.Tensor) -> torch.Tensor:
    """Rayleigh cross-section of H I (cm²), Dalgarno (Gray eq. 8.16), λ in Å."""
    return 5.799e-13 / lam ** 4 + 1.422e-6 / lam ** 6 + 2.784 / lam ** 8


def continuum(lam: torch.Tensor, t: torch.Tensor, p_e: torch.Tensor, n_hi: torch.Tensor,
              n_e: torch.Tensor) -> torch.Tensor:
    """Total continuum opacity per cm³ (cm⁻¹), shape of t + (N,)."""
    per_h = (kappa_hminus(lam, t, torch.log10(p_e)) + kappa_hydrogen(lam, t)
             + sigma_rayleigh_h(lam.to(t.dtype)))
    return n_hi[..., None] * per_h + (SIGMA_T * n_e)[..., None]
