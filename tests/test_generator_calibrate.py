"""Calibration code: the streamed eigen-Ridge equals sklearn's StandardScaler + Ridge, and
`calibrate` returns every figure with its research target on the tiny dataset."""

from __future__ import annotations

import json

import numpy as np

from engine.generator.calibrate import StandardRidge, calibrate


def test_standard_ridge_equals_sklearn():
    from sklearn.linear_model import Ridge
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler
    rng = np.random.default_rng(0)
    x = rng.standard_normal((400, 30)).astype(np.float32) * rng.uniform(0.1, 5, 30).astype(np.float32)
    y = x @ rng.standard_normal(30) + rng.standard_normal(400)
    xt = rng.standard_normal((50, 30)).astype(np.float32)
    chunks = [(x[:150], y[:150]), (x[150:], y[150:])]
    ours = StandardRidge()
    ours._accumulate(iter(chunks))
    for alpha in (0.1, 10.0, 1000.0):
        ours.set_alpha(alpha)
        ref = make_pipeline(StandardScaler(), Ridge(alpha=alpha)).fit(x.astype(np.float64), y)
        np.testing.assert_allclose(ours.predict(xt), ref.predict(xt.astype(np.float64)),
                                   rtol=1e-4, atol=1e-4)


def test_calibrate_reports_every_figure(tiny_dataset):
    from engine.io.dataset import Dataset
    with Dataset(tiny_dataset) as ds:
        figs = calibrate(ds, per_mag_n=2, ridge=False)
    names = [f.name for f in figs]
    assert sum("L2-SNR fraction" in n for n in names) == 4
    fr = [f.value for f in figs if "L2-SNR fraction" in f.name]
    np.testing.assert_allclose(sum(fr), 100.0, rtol=1e-9)
    for mag in ("20", "21.5", "22", "22.5"):
        assert any(n.startswith(f"mag {mag}: σ_CRLB") for n in names)
    assert all(f.target is not None for f in figs)
    json.dumps([f.to_dict() for f in figs])          # what `data calibrate --json` prints
    snr21 = next(f for f in figs if f.name == "mag 21.5: median per-pixel SNR")
    snr20 = next(f for f in figs if f.name == "mag 20: median per-pixel SNR")
    assert 2.5 < snr20.value / snr21.value < 4.5     # background-limited: ×3.98 per 1.5 mag
