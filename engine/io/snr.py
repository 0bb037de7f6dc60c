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
    return snr_quantiles(flux, error, mask, qs=(q,))[0]


def snr_quantiles(flux: np.ndarray, error: np.ndarray, mask: np.ndarray | None = None,
                  qs: tuple[float, ...] = (0.95, 0.5)) -> list[np.ndarray]:
    """`snr_pfsspec` at several quantiles from one ordering of each row (the builder needs
    0.95 and the median for every spectrum it writes). Rows whose pixels are all usable —
    every generated row — are ordered with one `np.partition` at the needed ranks instead
    of a full sort (O(n), the same values); the others are sorted."""
    r = np.atleast_2d(_ratio(flux, error, mask))
    usable = ~np.isnan(r)
    n = np.sum(usable, axis=1)
    full = n == r.shape[1]
    pos = [q * np.maximum(n - 1, 0) for q in qs]
    los = [np.floor(p).astype(np.int64) for p in pos]
    his = [np.minimum(lo + 1, np.maximum(n - 1, 0)) for lo in los]
    srt = np.empty_like(r)
    if full.any():
        kth = sorted({int(k) for lo, hi in zip(los, his) for k in (lo[full][:1].tolist()
                                                                    + hi[full][:1].tolist())})
        srt[full] = np.partition(r[full], kth, axis=1)
    if (~full).any():
        srt[~full] = np.sort(np.where(usable[~full], r[~full], np.inf), axis=1)
    rows = np.arange(len(r))
    out = []
    for p, lo, hi in zip(pos, los, his):
        a, b = srt[rows, lo], srt[rows, hi]
        t = p - lo
        with np.errstate(invalid="ignore"):
            v = np.where(t >= 0.5, b - (b - a) * (1 - t), a + (b - a) * t)
            v = np.where(t == 0, a, v)
        out.append(np.where(n > 0, v, np.nan))
    return out


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
