"""StreamingRidge equals sklearn's StandardScaler + Ridge pipeline (the research's model)."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.linear_model import Ridge
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from engine.models.base import ArrayChunks, TrainingCancelled
from engine.models.ridge import PAPER_ALPHAS, StreamingRidge


def _data(n=700, p=48, seed=0):
    """Features with very different offsets and scales (like flux pixels), one constant
    column, and a linear signal plus noise."""
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, p)) * rng.uniform(0.01, 5.0, p) + rng.uniform(-50, 800, p)
    X[:, 7] = 3.25  # zero variance: StandardScaler leaves it unscaled
    w = rng.normal(size=p)
    y = 4.0 + (X - X.mean(0)) / X.std(0).clip(1e-9) @ w * 0.1 + rng.normal(0, 0.3, n)
    return X, y


def _rel(a, b):
    return np.max(np.abs(a - b)) / max(np.max(np.abs(b)), 1e-300)


@pytest.mark.parametrize("alpha", [1e-2, 1.0, 1e2, 1e5])
@pytest.mark.parametrize("chunk_rows", [37, 256, 5000])
def test_equals_sklearn_pipeline(alpha, chunk_rows):
    X, y = _data()
    ref = make_pipeline(StandardScaler(), Ridge(alpha=alpha)).fit(X, y)
    ours = StreamingRidge(alpha=alpha, chunk_rows=chunk_rows).fit(ArrayChunks(X, y))
    sc, rg = ref[0], ref[-1]
    assert _rel(ours.mean_, sc.mean_) < 1e-12
    assert _rel(ours.scale_, sc.scale_) < 1e-9
    assert ours.scale_[7] == 1.0 == sc.scale_[7]
    assert _rel(ours.coef_, rg.coef_) < 1e-6
    assert abs(ours.intercept_ - rg.intercept_) / abs(rg.intercept_) < 1e-6
    X_new, _ = _data(n=200, seed=1)
    assert _rel(ours.predict(X_new), ref.predict(X_new)) < 1e-6


def test_plain_array_fit_and_float32_input():
    """fit(X, y) on arrays; float32 chunks are accumulated in float64, so the result
    equals the sklearn pipeline on the float64 copy of the same float32 numbers."""
    X, y = _data(n=400, p=32, seed=3)
    X32 = X.astype(np.float32)
    ref = make_pipeline(StandardScaler(), Ridge(alpha=10.0)).fit(X32.astype(np.float64), y)
    ours = StreamingRidge(alpha=10.0, chunk_rows=61).fit(X32, y)
    assert _rel(ours.coef_, ref[-1].coef_) < 1e-6
    assert _rel(ours.predict(X32), ref.predict(X32.astype(np.float64))) < 1e-6


def test_alpha_path_picks_best_on_validation():
    """Every α of the grid equals its own sklearn fit on the validation split, and the
    chosen α is the one with the highest validation R²."""
    X, y = _data(n=600, p=40, seed=5)
    Xv, yv = _data(n=300, p=40, seed=6)
    grid = [1e-1, 1e0, 1e1, 1e2, 1e3, 1e4]
    est = StreamingRidge(alphas=grid, chunk_rows=100).fit(X, y, eval_set=(Xv, yv))
    assert [r["alpha"] for r in est.alpha_curve_] == grid
    for row in est.alpha_curve_:
        ref = make_pipeline(StandardScaler(), Ridge(alpha=row["alpha"])).fit(X, y)
        pred = ref.predict(Xv)
        r2 = 1 - np.sum((yv - pred) ** 2) / np.sum((yv - yv.mean()) ** 2)
        assert row["val_r2"] == pytest.approx(r2, rel=1e-8, abs=1e-10)
        assert row["val_mae"] == pytest.approx(np.mean(np.abs(yv - pred)), rel=1e-8)
    best = max(est.alpha_curve_, key=lambda r: r["val_r2"])["alpha"]
    assert est.alpha_ == best
    ref = make_pipeline(StandardScaler(), Ridge(alpha=best)).fit(X, y)
    assert _rel(est.coef_, ref[-1].coef_) < 1e-6


def test_followers_see_the_chosen_alphas_validation_figures():
    """A run's state keeps each metric's latest value (engine.run_state); the α path's last
    metric event is the largest α's, so the fit ends with a progress event carrying the
    chosen α's validation R² and MAE — what the CLI's finished line and logg-tui show."""
    X, y = _data(n=900, p=40, seed=5)
    X, y, Xv, yv = X[:600], y[:600], X[600:], y[600:]       # one signal for both splits
    seen = []
    est = StreamingRidge(alphas=[1e-1, 1e1, 1e6], chunk_rows=100).fit(
        X, y, eval_set=(Xv, yv), callbacks=[lambda e, **f: seen.append((e, f))])
    best = max(est.alpha_curve_, key=lambda r: r["val_r2"])
    last = [f for e, f in seen if e == "progress"][-1]
    assert last["val_r2"] == best["val_r2"] > est.alpha_curve_[-1]["val_r2"]
    assert last["val_mae"] == best["val_mae"] and last["alpha"] == est.alpha_ == 1e-1
    assert last["done"] == last["total"] == 600


def test_paper_alpha_grid_is_half_decades():
    assert len(PAPER_ALPHAS) == 13
    assert PAPER_ALPHAS[0] == pytest.approx(1e2) and PAPER_ALPHAS[-1] == pytest.approx(1e8)
    assert PAPER_ALPHAS[1] == pytest.approx(10 ** 2.5)


def test_no_standardize_equals_plain_ridge():
    X, y = _data(n=300, p=20, seed=8)
    ours = StreamingRidge(alpha=5.0, standardize=False, chunk_rows=41).fit(X, y)
    ref = Ridge(alpha=5.0).fit(X, y)
    assert _rel(ours.coef_, ref.coef_) < 1e-6
    assert _rel(ours.predict(X), ref.predict(X)) < 1e-6


def test_should_stop_cancels():
    X, y = _data(n=300, p=10)
    with pytest.raises(TrainingCancelled):
        StreamingRidge(chunk_rows=50).fit(X, y, should_stop=lambda: True)


def test_events_report_rows():
    X, y = _data(n=250, p=10)
    seen = []
    StreamingRidge(chunk_rows=100).fit(X, y, callbacks=[lambda e, **f: seen.append((e, f))])
    assert seen[0][0] == "start" and seen[0][1]["total"] == 250
    assert [f["done"] for e, f in seen if e == "progress"] == [100, 200, 250]


def test_adapter_trains_on_split_noise_and_round_trips(tmp_path):
    """Through the adapter: one seeded realisation per copy from Split.noisy_chunks
    (copies = 2 equals sklearn on the stacked realisations), save/load without pickle."""
    from engine.io.dataset import Dataset
    from engine.models.ridge_adapter import RidgeAdapter
    from engine.models.contract import TrainContext
    from fakes import make_fake_dataset

    ds = Dataset(make_fake_dataset(tmp_path / "fake", train_shards=(150, 100), n_val=40,
                                   n_test=30, n_pixels=24))
    train = ds.train(250)
    ad = RidgeAdapter()
    est = ad.build({**ad.presets["ridge-fixed"], "alpha": 50.0, "chunk_rows": 33})
    ctx = TrainContext(train=train, val=None, noise_level=1.0, seed=7, augment_copies=2)
    est = ad.train(est, ctx)
    X = np.concatenate([np.concatenate([x for _s, _e, x, _y in train.noisy_chunks(1.0, s, 64)])
                        for s in (7, 8)]).astype(np.float64)
    ref = make_pipeline(StandardScaler(), Ridge(alpha=50.0)).fit(X, np.tile(train.log_g, 2))
    assert est.n_samples_seen_ == 500
    assert _rel(est.coef_, ref[-1].coef_) < 1e-6
    ad.save(est, tmp_path / "ckpt")
    again = ad.load(tmp_path / "ckpt")
    Xt = ds.split("test").read("noisy")
    np.testing.assert_array_equal(again.predict(Xt), est.predict(Xt))
    assert not list((tmp_path / "ckpt").glob("*.pkl"))
    ds.close()


@pytest.mark.parametrize("alpha", [1e-1, 1e2, 1e5])
def test_dual_path_equals_sklearn_when_fewer_rows_than_features(alpha):
    """n < p takes the kernel (dual) solve; it must give the primal solution."""
    X, y = _data(n=60, p=150, seed=11)
    ref = make_pipeline(StandardScaler(), Ridge(alpha=alpha)).fit(X, y)
    ours = StreamingRidge(alpha=alpha, chunk_rows=17).fit(ArrayChunks(X, y))
    assert _rel(ours.coef_, ref[-1].coef_) < 1e-6
    X_new, _ = _data(n=30, p=150, seed=12)
    assert _rel(ours.predict(X_new), ref.predict(X_new)) < 1e-6


def test_dual_alpha_path_equals_sklearn_on_validation():
    X, y = _data(n=80, p=200, seed=13)
    Xv, yv = _data(n=40, p=200, seed=14)
    grid = [1e0, 1e1, 1e2, 1e3]
    est = StreamingRidge(alphas=grid, chunk_rows=23).fit(X, y, eval_set=(Xv, yv))
    for row in est.alpha_curve_:
        pred = make_pipeline(StandardScaler(), Ridge(alpha=row["alpha"])).fit(X, y).predict(Xv)
        r2 = 1 - np.sum((yv - pred) ** 2) / np.sum((yv - yv.mean()) ** 2)
        assert row["val_r2"] == pytest.approx(r2, rel=1e-8, abs=1e-10)
    ref = make_pipeline(StandardScaler(), Ridge(alpha=est.alpha_)).fit(X, y)
    assert _rel(est.coef_, ref[-1].coef_) < 1e-6
