"""StreamingLGBM: real LightGBM fed through lgb.Sequence from chunks."""

from __future__ import annotations

import numpy as np

from engine.models.base import ArrayChunks
from engine.models.lgbm import ChunkSequence, StreamingLGBM

FAST = dict(n_estimators=200, learning_rate=0.1, num_leaves=15, max_bin=63,
            early_stopping_rounds=20, min_child_samples=10, chunk_rows=97, n_jobs=2)


def _nonlinear(n, p=30, seed=0):
    """log g-like target with a nonlinear dependence on a few 'pixels'."""
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, p)).astype(np.float32)
    y = 3.0 + np.sin(2 * X[:, 0]) + 0.5 * X[:, 1] ** 2 - np.abs(X[:, 2]) \
        + rng.normal(0, 0.1, n)
    return X, y


def test_sequence_rows_match_source():
    X, y = _nonlinear(1000)
    seq = ChunkSequence(ArrayChunks(X, y), batch_size=128)
    assert len(seq) == 1000
    for i in [0, 5, 127, 128, 600, 999]:  # monotonic single rows, as LightGBM samples
        np.testing.assert_array_equal(seq[i], X[i].astype(np.float64))
    np.testing.assert_array_equal(seq[100:300], X[100:300])  # backwards: restarts
    np.testing.assert_array_equal(seq[-1], X[-1])
    assert seq[0:10].dtype == np.float64


def test_beats_constant_and_reload_is_exact(tmp_path):
    X, y = _nonlinear(3000)
    Xv, yv = _nonlinear(500, seed=1)
    Xt, yt = _nonlinear(500, seed=2)
    events = []
    est = StreamingLGBM(**FAST).fit(ArrayChunks(X, y), eval_set=(Xv, yv),
                                    callbacks=[lambda e, **f: events.append((e, f))],
                                    cache_path=tmp_path / "c.bin")
    pred = est.predict(Xt)
    mse, mse0 = np.mean((yt - pred) ** 2), np.mean((yt - y.mean()) ** 2)
    assert mse < 0.25 * mse0  # R² > 0.75 on a signal a linear model cannot fit
    assert est.evals_result_["l2"] and est.evals_result_["l1"]
    assert len(est.evals_result_["l2"]) == len([e for e, _ in events if e == "progress"])
    assert est.best_iteration_ == 1 + int(np.argmin(est.evals_result_["l2"]))
    est.save(tmp_path / "model.txt")
    import lightgbm as lgb
    booster = lgb.Booster(model_file=str(tmp_path / "model.txt"))
    np.testing.assert_array_equal(booster.predict(Xt), pred)
    again = StreamingLGBM.load(tmp_path / "model.txt")
    np.testing.assert_array_equal(again.predict(Xt), pred)


def test_binned_dataset_cache_is_reused(tmp_path):
    X, y = _nonlinear(1500)
    Xv, yv = _nonlinear(300, seed=1)
    cache = tmp_path / "cache" / "lgbm_x.bin"
    first = StreamingLGBM(**FAST).fit(X, y, eval_set=(Xv, yv), cache_path=cache)
    assert not first.cache_hit_ and cache.is_file()
    stamp = cache.stat().st_mtime_ns
    second = StreamingLGBM(**FAST).fit(X, y, eval_set=(Xv, yv), cache_path=cache)
    assert second.cache_hit_ and cache.stat().st_mtime_ns == stamp
    assert first.binned_mb_ == second.binned_mb_ == cache.stat().st_size / 2**20
    assert StreamingLGBM(**FAST).fit(X, y).binned_mb_ is None      # no cache, no size
    # same bins, same seed: the same model
    np.testing.assert_allclose(second.predict(Xv), first.predict(Xv), rtol=0, atol=1e-12)
    assert not list(cache.parent.glob(".*tmp"))


def test_should_stop_ends_cleanly():
    X, y = _nonlinear(800)
    Xv, yv = _nonlinear(200, seed=1)
    calls = {"n": 0}

    def stop():
        calls["n"] += 1
        return calls["n"] >= 5

    est = StreamingLGBM(**FAST).fit(X, y, eval_set=(Xv, yv), should_stop=stop)
    assert est.stopped_ and est.booster_.current_iteration() == 5
    assert est.predict(Xv).shape == (200,)
