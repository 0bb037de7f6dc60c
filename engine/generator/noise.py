"""The PFS noise model (docs/generator.md): the ETC MR reference run (flat f_ν source at
18 AB, 900 s, new moon) scaled by magnitude and by the star's own SED.

Per pixel and exposure the source gives s = k·S18·10^{−0.4(m−18)}·f_ν/⟨f_ν⟩_i e⁻ over a
background variance V_n (read + dark + sky + sky-subtraction residual, from the ETC). The
mean of N_exp exposures has σ_e = √((s+V_n)/N_exp); the stored `error` is that σ in the
units of the normalised flux. k lumps throughput, seeing, zenith and field angle against
the ETC reference; its lognormal scatter spreads the SNR at fixed magnitude."""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import numpy as np

ETC_PATH = Path(__file__).resolve().parents[2] / "data" / "pfs_etc_mr.npz"
I_BAND = (7100.0, 8450.0)   # the HSC-i band inside the MR window


@dataclass(frozen=True)
class NoiseConfig:
    """k0: source-count scale vs the ETC; k_scatter: σ of ln k; n_exp, exp_time as pfsspec."""

    k0: float = 1.42
    k_scatter: float = 0.10
    n_exp: int = 12
    exp_time: float = 900.0


@lru_cache(maxsize=1)
def etc_template() -> dict[str, np.ndarray]:
    """The shipped ETC arrays: wave_left (Å), s18 (e⁻), var_noobj (e²), sky (e⁻)."""
    with np.load(ETC_PATH) as z:
        return {k: z[k].astype(np.float64) for k in z.files}


def draw_k(rng: np.random.Generator, n: int, cfg: NoiseConfig) -> np.ndarray:
    return cfg.k0 * np.exp(cfg.k_scatter * rng.standard_normal(n))


def error_from_flux(flux: np.ndarray, wave: np.ndarray, mag: np.ndarray, k: np.ndarray,
                    cfg: NoiseConfig = NoiseConfig()) -> np.ndarray:
    """1σ error (N, W) in the units of the normalised flux (N, W).

    error = σ_e·flux/s, written as σ_e·⟨Fλ²⟩_i/(k·S18·10^{−0.4(m−18)}·λ²) so that it never
    divides by the flux (deep line cores keep a finite, background-set error)."""
    etc = etc_template()
    flux = np.asarray(flux, dtype=np.float64)
    lam2 = wave[None, :] ** 2
    band = (wave >= I_BAND[0]) & (wave <= I_BAND[1])
    fnu_mean = (flux[:, band] * lam2[:, band]).mean(1, keepdims=True)
    scale = (k * 10.0 ** (-0.4 * (np.asarray(mag) - 18.0)))[:, None] * etc["s18"][None, :]
    counts_per_flux = scale * lam2 / fnu_mean          # e⁻ per unit normalised flux
    s = np.clip(flux, 0.0, None) * counts_per_flux
    sigma_e = np.sqrt((s + etc["var_noobj"][None, :]) / cfg.n_exp)
    return sigma_e / counts_per_flux
