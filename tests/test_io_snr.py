"""SNR estimators against direct per-row numpy computations."""

from __future__ import annotations

import numpy as np

from engine.io.snr import snr_l2, snr_median, snr_pfsspec


def _data(n=40, w=300, seed=0):
    rng = np.random.default_rng(seed)
    flux = 0.5 + 0.2 * rng.standard_normal((n, w))
    error = 0.02 + 0.1 * rng.random((n, w))
    error[rng.random((n, w)) < 0.05] = 0.0
    error[rng.random((n, w)) < 0.02] = np.nan
    error[rng.random((n, w)) < 0.01] = -1.0
    mask = (rng.random((n, w)) < 0.1).astype(np.int64) * 0x10000
    error[5] = 0.0  # a row with no usable pixel → NaN
    return flux, error, mask


def _direct(flux, error, mask, fn):
    out = []
    for f, e, m in zip(flux, error, mask):
        good = (e > 0) & np.isfinite(e) & np.isfinite(f) & (m == 0)
        out.append(fn(f[good] / e[good]) if good.any() else np.nan)
    return np.array(out)


def test_snr_pfsspec_is_q95_over_usable_pixels():
    flux, error, mask = _data()
    got = snr_pfsspec(flux, error, mask)
    want = _direct(flux, error, mask, lambda r: np.quantile(r, 0.95))
    np.testing.assert_allclose(got, want, rtol=1e-12, equal_nan=True)
    assert np.isnan(got[5]) and np.isfinite(np.delete(got, 5)).all()
    no_mask = snr_pfsspec(flux, error)
    want_nm = _direct(flux, error, np.zeros_like(mask), lambda r: np.quantile(r, 0.95))
    np.testing.assert_allclose(no_mask, want_nm, rtol=1e-12, equal_nan=True)


def test_snr_median():
    flux, error, mask = _data(seed=1)
    np.testing.assert_allclose(snr_median(flux, error, mask),
                               _direct(flux, error, mask, np.median), rtol=1e-12,
                               equal_nan=True)


def test_snr_l2():
    rng = np.random.default_rng(2)
    flux = rng.random((10, 50))
    error = 0.1 + rng.random((10, 50))
    want = [np.sqrt((f ** 2).sum()) / np.sqrt(((e * 0.5) ** 2).sum())
            for f, e in zip(flux, error)]
    np.testing.assert_allclose(snr_l2(flux, error, noise_level=0.5), want, rtol=1e-12)
    np.testing.assert_allclose(snr_l2(flux[0], error[0]), [want[0] * 0.5], rtol=1e-12)
