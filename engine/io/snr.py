"""The three SNR estimators, always named (docs/data-format.md, SNR estimators), vectorised per row.

- `snr_pfsspec`: what pfsspec stores in the `snr` column (docs/data-format.md, inferred):
  the 0.95 quantile (numpy 'linear') of flux/error over pixels with error > 0, finite, and
  mask == 0; NaN when a row has no such pixel.
- `snr_median`: median of flux/error over the same pixels.
- `snr_l2`: ‖flux‖₂ / ‖error·noise_level‖₂ (the research's `snr_no_mask`, SNR-MoE bins)."""

from __future__ import annotations

import numpy as np


def _ratio(flux: np.ndarray, error: np.ndarray, mask: np.ndarray | None) -> np.ndarray:
    """flux/error with NaN where the pixel is unusable, so nan-quantiles skip it."""
    flux = np.asarray(flux, dtype=np.float64)
    error = np.asarray(error, dtype=np.float64)
    good = np.isfinite(flux) & np.isfinite(error) & (error > 0)
    if mask is not None:
        good &= np.asarray(mask) == 0
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(good, flux / np.where(good, error, 1.0), np.nan)


def snr_pfsspec(flux: np.ndarray, error: np.ndarray, mask: np.ndarray | None = None,
                q: float = 0.95) -> np.ndarray:
    """Per-row q-quantile of flux/error over usable pixels (float64, NaN if none).

    Same result as `np.quantile(row[usable], q)` (numpy's default 'linear' method) per
    row, but vectorised: unusable pixels sort to the end as +inf, and each row's quantile
    is interpolated between its sorted values at floor/ceil of q·(n_usable − 1)."""
    r = np.atleast_2d(_ratio(flux, error, mask))
    n = np.sum(~np.isnan(r), axis=1)
    srt = np.sort(np.where(np.isnan(r), np.inf, r), axis=1)
    pos = q * np.maximum(n - 1, 0)
    lo = np.floor(pos).astype(np.int64)
    hi = np.minimum(lo + 1, np.maximum(n - 1, 0))
    rows = np.arange(len(r))
    a, b = srt[rows, lo], srt[rows, hi]
    t = pos - lo
    with np.errstate(invalid="ignore"):
        out = np.where(t >= 0.5, b - (b - a) * (1 - t), a + (b - a) * t)
        out = np.where(t == 0, a, out)
    return np.where(n > 0, out, np.nan)


def snr_median(flux: np.ndarray, error: np.ndarray, mask: np.ndarray | None = None
               ) -> np.ndarray:
    """Per-row median of flux/error over usable pixels (float64, NaN if none)."""
    return snr_pfsspec(flux, error, mask, q=0.5)


def snr_l2(flux: np.ndarray, error: np.ndarray, noise_level: float = 1.0) -> np.ndarray:
    """Per-row ‖flux‖₂ / ‖error·noise_level‖₂ (inf when noise_level is 0)."""
    flux = np.atleast_2d(np.asarray(flux, dtype=np.float64))
    error = np.atleast_2d(np.asarray(error, dtype=np.float64))
    with np.errstate(divide="ignore"):
        return np.linalg.norm(flux, axis=1) / (np.linalg.norm(error, axis=1) * noise_level)
