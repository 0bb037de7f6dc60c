"""Calibration code: the Ridge learnability figure (StreamingRidge) equals sklearn's
StandardScaler + Ridge and the old calibration Ridge, and `calibrate` returns every figure
with its research target on the tiny dataset."""

from __future__ import annotations

import json

import numpy as np
import pytest

from engine.generator.calibrate import calibrate


# The previous calibration Ridge (a second eigen-Ridge with a float32 Gram matrix) gave
# these on make_fake_dataset(seed=3): (train rows, R², α). StreamingRidge is exact in
# float64; the old float32 accumulation was off by < 1e-4.
OLD_RIDGE_FIGURES = ((None, 0.9593048371615968, 316.0), (100, 0.9388878288445953, 31.6))


def test_ridge_figure_is_streaming_ridge_and_unchanged(tmp_path):
    """The learnability figure: α chosen on val from the grid, R² on the frozen test set —
    equal to sklearn's StandardScaler + Ridge at every step (primal and n < p dual path)
    and to the number the old calibration Ridge printed."""
    from sklearn.linear_model import Ridge
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    from engine.eval.metrics import r2
    from engine.io.dataset import Dataset
    from engine.models.base import NoisySplitSource
    from engine.models.ridge_calibration import CALIBRATION_ALPHAS, ridge_figure
    from fakes import make_fake_dataset

    root = make_fake_dataset(tmp_path / "fake", seed=3)
    with Dataset(root) as ds:
        val, test = ds.split("val"), ds.split("test")
        xv, yv = val.noisy(1.0, seed=1).astype(np.float64), val.params["log_g"].to_numpy()
        xt, yt = test.noisy(1.0).astype(np.float64), test.params["log_g"].to_numpy()
        for rows, old_r2, old_alpha in OLD_RIDGE_FIGURES:
            fig = ridge_figure(ds, rows, seed=0)[0]
            src = NoisySplitSource(ds.train(rows) if rows else ds.train(), 1.0, 0)
            x, y = np.concatenate(list(src.chunks(4096))).astype(np.float64), src.labels()
            fits = [make_pipeline(StandardScaler(), Ridge(alpha=a)).fit(x, y)
                    for a in CALIBRATION_ALPHAS]
            best = int(np.argmax([r2(yv, m.predict(xv)) for m in fits]))
            assert f"α={CALIBRATION_ALPHAS[best]:.3g}," in fig.note
            assert fig.value == pytest.approx(r2(yt, fits[best].predict(xt)), abs=1e-9)
            assert f"α={old_alpha:.3g}," in fig.note
            assert fig.value == pytest.approx(old_r2, abs=1e-4)


def test_calibrate_reports_every_figure(tiny_dataset):
    from engine.io.dataset import Dataset
    with Dataset(tiny_dataset) as ds:
        figs = calibrate(ds, per_mag_n=2)
    names = [f.name for f in figs]
    assert sum("L2-SNR fraction" in n for n in names) == 4
    fr = [f.value for f in figs if "L2-SNR fraction" in f.name]
    np.testing.assert_allclose(sum(fr), 100.0, rtol=1e-9)
    for mag in ("20", "21.5", "22", "22.5"):
        assert any(n.startswith(f"mag {mag}: σ_CRLB") for n in names)
    bins = [f for f in figs if "R²_max 5-D, T_eff" in f.name]
    assert len(bins) == 9 and all(f.target is None and f.ok() is None for f in bins)
    assert all(f.target is not None for f in figs if f not in bins)
    assert any(n == "mag 22: Schur 5-D median" for n in names)
    json.dumps([f.to_dict() for f in figs])          # what `data calibrate --json` prints
    snr21 = next(f for f in figs if f.name == "mag 21.5: median per-pixel SNR")
    snr20 = next(f for f in figs if f.name == "mag 20: median per-pixel SNR")
    assert 2.5 < snr20.value / snr21.value < 4.5     # background-limited: ×3.98 per 1.5 mag


def test_median_se_matches_the_normal_theory():
    """The bootstrap SE of a median of n normal draws ≈ √(π/2)·σ/√n (large n)."""
    from engine.generator.calibrate import median_se

    x = np.random.default_rng(3).normal(0.0, 2.0, 400)
    assert median_se(x, draws=2000) == pytest.approx(np.sqrt(np.pi / 2) * 2.0 / 20, rel=0.2)
    assert np.isnan(median_se(np.array([1.0, np.nan])))
