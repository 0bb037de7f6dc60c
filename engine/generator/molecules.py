"""Parametric TiO and CN bands (docs/generator.md) as optical depths on the fine grid.

Why parametric: line-by-line molecular synthesis would cost more than the whole atomic
forest. A band is a sawtooth that starts at its head and degrades redward, multiplied by a
fixed pseudo-random "line forest" texture so that the bands carry pixel-scale structure
(not just a smooth slope) — the entanglement with T_eff/[M/H]/[C/M] that makes log g
harder for linear models, as in real cool-star spectra."""

from __future__ import annotations

import numpy as np
import torch

# TiO γ, γ' and ε heads (vacuum Å, Kirkpatrick et al. 1991), weights, e-folding lengths.
TIO_HEADS = ((7054.0, 1.0), (7088.0, 0.8), (7126.0, 0.6), (7589.0, 0.8), (7666.0, 0.5),
             (7672.0, 0.5), (8432.0, 0.3), (8442.0, 0.3), (8452.0, 0.3))
TIO_LENGTH = 100.0
# CN red system Δv=+2 heads near 7875/8125 Å and the 8700–8850 Å forest.
CN_HEADS = ((7875.0, 1.0), (8125.0, 0.8), (8690.0, 0.6))
CN_LENGTH = 150.0


def _texture(wave: np.ndarray, seed: int, contrast: float) -> np.ndarray:
    """A fixed positive line-forest texture with mean 1 (deterministic)."""
    rng = np.random.default_rng(seed)
    raw = rng.random(wave.size)
    k = np.exp(-0.5 * (np.arange(-12, 13) / 4.0) ** 2)
    smooth = np.convolve(raw, k / k.sum(), mode="same")
    smooth = (smooth - smooth.mean()) / smooth.std()
    return np.clip(1.0 + contrast * smooth, 0.05, None)


def band_profile(wave: np.ndarray, heads, length: float, seed: int) -> np.ndarray:
    prof = np.zeros_like(wave)
    for lam_h, w in heads:
        d = wave - lam_h
        prof += np.where(d > 0, w * np.exp(-np.clip(d, 0, None) / length), 0.0)
    return prof * _texture(wave, seed, 0.6)


class Molecules(torch.nn.Module):
    """θ → τ_mol (B, N_fine): TiO below ~4300 K, CN in K giants, both saturating."""

    def __init__(self, fine_wave: np.ndarray) -> None:
        super().__init__()
        self.register_buffer("tio", torch.as_tensor(band_profile(fine_wave, TIO_HEADS, TIO_LENGTH, 101)))
        self.register_buffer("cn", torch.as_tensor(band_profile(fine_wave, CN_HEADS, CN_LENGTH, 202)))

    def amplitudes(self, theta: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        teff, logg, mh, am, cm = (theta[:, i] for i in range(5))
        log_tio = 0.80 - (teff - 3600.0) / 200.0 + 2.0 * (mh + am) + 0.3 * (logg - 4.5)
        a_tio = torch.pow(10.0, log_tio)
        a_tio = a_tio / (1.0 + a_tio / 3.0)
        a_cn = (0.03 * torch.pow(10.0, mh + cm) * torch.exp(-0.5 * ((teff - 4500.0) / 600.0) ** 2)
                * torch.pow(10.0, -0.2 * (logg - 2.5)))
        a_cn = a_cn / (1.0 + a_cn / 0.5)
        return a_tio, a_cn

    def forward(self, theta: torch.Tensor) -> torch.Tensor:
        a_tio, a_cn = self.amplitudes(theta)
        return a_tio[:, None] * self.tio.to(theta.dtype) + a_cn[:, None] * self.cn.to(theta.dtype)
