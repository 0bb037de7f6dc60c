"""SNR estimators against direct per-row numpy computations."""

from __future__ import annotations

import numpy as np
import pytest

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


def test_snr_quantiles_one_ordering_equals_np_quantile_per_row():
    """The builder's one-partition path (all pixels usable) and the sorted path (some
    unusable) give numpy's 'linear' quantile of each row's usable flux/error exactly."""
    from engine.io.snr import snr_quantiles
    rng = np.random.default_rng(4)
    flux = rng.random((12, 4096)).astype(np.float32)
    error = (0.05 + 0.1 * rng.random((12, 4096))).astype(np.float32)
    error[3, :100] = 0.0
    flux[5, 7] = np.nan
    error[9] = 0.0
    q95, q50 = snr_quantiles(flux, error, qs=(0.95, 0.5))
    ratio = flux.astype(np.float64) / np.where(error > 0, error, 1.0).astype(np.float64)
    for i in range(12):
        ok = np.isfinite(ratio[i]) & (error[i] > 0)
        if not ok.any():
            assert np.isnan(q95[i]) and np.isnan(q50[i])
            continue
        assert q95[i] == pytest.approx(np.quantile(ratio[i][ok], 0.95), rel=1e-15)
        assert q50[i] == pytest.approx(np.median(ratio[i][ok]), rel=1e-15)
