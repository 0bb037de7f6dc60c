"""LSF convolution + flux-conserving rebin to the 4096 output pixels, as one fixed linear
operator (docs/generator.md, Forward model):

1. an exact 3:1 box average of the fine grid (0.03 → 0.09 Å);
2. convolution with the Gaussian LSF (FWHM 1.7 Å, constant in Å) by FFT — the fine grid
   has ≥ 20 Å of margin on each side, far more than the ±6σ (4.3 Å) kernel, so the
   circular wrap never reaches an output pixel;
3. the exact bin average of the piecewise-constant 0.09 Å samples over each output pixel
   (overlap weights, 7 taps per pixel).

Linear and fixed: cheap, differentiable (forward and reverse mode), the same for every
spectrum."""

from __future__ import annotations

import math

import numpy as np
import torch

from engine.generator import grids

FWHM_A = 1.7
_TAPS = 7


def _coarse_edges(grids=grids) -> np.ndarray:
    step = grids.FINE_STEP * grids.COARSE_FACTOR
    return grids.FINE_START + step * np.arange(grids.N_FINE // grids.COARSE_FACTOR + 1)


def rebin_operator(grids=grids) -> tuple[np.ndarray, np.ndarray]:
    """(idx, weight) (4096, 7): output pixel k = Σ_l coarse[idx[k,l]]·weight[k,l], the
    exact average over the pixel of the piecewise-constant coarse samples. `grids`: the
    module with the fine grid (v1's engine.generator.grids, or v2's lte.grids)."""
    ce = _coarse_edges(grids)
    oe = grids.wave_edges()
    first = np.searchsorted(ce, oe[:-1], side="right") - 1
    idx = first[:, None] + np.arange(_TAPS)[None, :]
    lo = np.maximum(ce[idx], oe[:-1, None])
    hi = np.minimum(ce[idx + 1], oe[1:, None])
    w = np.clip(hi - lo, 0.0, None) / (oe[1:] - oe[:-1])[:, None]
    if not np.allclose(w.sum(1), 1.0):
        raise ValueError("rebin taps do not cover the output pixels")
    return idx, w


def lsf_kernel_fft(fwhm: float = FWHM_A, grids=grids) -> np.ndarray:
    """rfft of the unit-sum Gaussian kernel, centred at sample 0 (circular)."""
    n = grids.N_FINE // grids.COARSE_FACTOR
    step = grids.FINE_STEP * grids.COARSE_FACTOR
    sigma = fwhm / (2.0 * math.sqrt(2.0 * math.log(2.0))) / step
    j = np.arange(n)
    d = np.minimum(j, n - j).astype(np.float64)
    k = np.where(d <= 6 * sigma, np.exp(-0.5 * (d / sigma) ** 2), 0.0)
    return np.fft.rfft(k / k.sum())


class LsfRebin(torch.nn.Module):
    def __init__(self, fwhm: float = FWHM_A, grids=grids) -> None:
        super().__init__()
        idx, w = rebin_operator(grids)
        kf = lsf_kernel_fft(fwhm, grids)
        self.factor = grids.COARSE_FACTOR
        self.register_buffer("idx", torch.as_tensor(idx.reshape(-1), dtype=torch.long))
        self.register_buffer("weight", torch.as_tensor(w))
        self.register_buffer("kernel_re", torch.as_tensor(kf.real.copy()))
        self.register_buffer("kernel_im", torch.as_tensor(kf.imag.copy()))
        self.n_coarse = grids.N_FINE // grids.COARSE_FACTOR

    def forward(self, fine: torch.Tensor) -> torch.Tensor:
        """(B, N_fine) → (B, 4096)."""
        b = fine.shape[0]
        coarse = fine.reshape(b, -1, self.factor).mean(-1)
        kernel = torch.complex(self.kernel_re, self.kernel_im)
        conv = torch.fft.irfft(torch.fft.rfft(coarse, dim=1) * kernel, n=self.n_coarse, dim=1)
        g = conv.index_select(1, self.idx).reshape(b, grids.N_PIXELS, _TAPS)
        return (g * self.weight).sum(-1)
