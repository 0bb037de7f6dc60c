"""Grouped Ridge statistics (engine.models.ridge_stats): one pass gives every group's
statistics and the total's, equal to a separate pass over each; a Ridge fitted from them
equals StreamingRidge.fit on the same rows; the MoE's one-pass Ridge experts equal experts
fitted one bin at a time."""

from __future__ import annotations

import numpy as np
import pytest

from engine.models.base import ArrayChunks
from engine.models.ridge import StreamingRidge
from engine.models.ridge_stats import accumulate, accumulate_groups


def _data(n: int, p: int, seed: int = 0):
    rng = np.random.default_rng(seed)
    X = (1.0 + 0.1 * rng.normal(size=(n, p))).astype(np.float32)   # flux-like: far from 0
    y = X[:, :5].astype(np.float64) @ rng.normal(size=5) + 0.1 * rng.normal(size=n)
    return X, y


def _same(a, b):
    assert a.n == b.n
    for name in ("mean", "scatter", "cross"):
        np.testing.assert_allclose(getattr(a, name), getattr(b, name), rtol=1e-9, atol=1e-9)
    assert a.y_mean == pytest.approx(b.y_mean, rel=1e-12)
    np.testing.assert_array_equal(a.y, b.y)


def test_each_group_and_the_total_equal_their_own_pass():
    X, y = _data(700, 40)
    groups = np.random.default_rng(1).integers(-1, 3, size=700)    # −1: in no group
    stats, total = accumulate_groups(ArrayChunks(X, y), groups, 4, chunk_rows=64)
    assert stats[3] is None                                          # a group without rows
    for g in range(3):
        m = groups == g
        _same(stats[g], accumulate(ArrayChunks(X[m], y[m]), 64))
        assert stats[g].rows is None                                 # ≥ p rows: primal
    _same(total, accumulate(ArrayChunks(X, y), 64))


def test_fits_from_group_stats_equal_fits_on_the_rows_primal_and_dual():
    X, y = _data(500, 60, seed=2)
    Xv, yv = _data(80, 60, seed=3)
    groups = np.where(np.arange(500) < 30, 0, 1)                     # group 0: 30 < p rows
    stats, total = accumulate_groups(ArrayChunks(X, y), groups, 2, chunk_rows=97)
    assert stats[0].rows is not None and stats[0].rows.shape == (30, 60)
    grid = [1e-2, 1.0, 1e2]
    for st, m in ((stats[0], groups == 0), (stats[1], groups == 1),
                  (total, np.ones(500, bool))):
        a = StreamingRidge(alphas=grid).fit_stats(st, eval_set=(Xv, yv))
        b = StreamingRidge(alphas=grid).fit(X[m], y[m], eval_set=(Xv, yv))
        assert a.alpha_ == b.alpha_
        np.testing.assert_allclose(a.predict(Xv), b.predict(Xv), rtol=1e-8, atol=1e-9)


def test_a_total_with_fewer_rows_than_features_keeps_every_row_once():
    X, y = _data(90, 120, seed=4)
    groups = np.arange(90) % 3
    stats, total = accumulate_groups(ArrayChunks(X, y), groups, 3, chunk_rows=16)
    assert total.rows.shape == (90, 120)
    for g in range(3):
        m = groups == g
        np.testing.assert_array_equal(stats[g].rows + stats[g].shift, total.rows[m]
                                      + total.shift)
        a = StreamingRidge(alpha=3.0).fit_stats(stats[g])
        b = StreamingRidge(alpha=3.0).fit(X[m], y[m])
        np.testing.assert_allclose(a.predict(X), b.predict(X), rtol=1e-8, atol=1e-9)


def test_bad_groups_are_refused():
    X, y = _data(50, 8)
    with pytest.raises(ValueError, match="group labels"):
        accumulate_groups(ArrayChunks(X, y), np.zeros(49, int), 1, chunk_rows=16)


def test_one_pass_moe_experts_equal_experts_fitted_bin_by_bin(tmp_path):
    """The MoE's Ridge set (global + one expert per bin from one grouped pass) predicts what
    fitting each model on its own streamed rows predicts (the previous code path)."""
    from engine.analysis.moe.experts import MIN_TRAIN, _fit_one, fit_experts
    from engine.analysis.split_reads import RowSubset
    from engine.io.dataset import resolve_dataset
    from fakes import make_toy_analysis_dataset

    ds = resolve_dataset(make_toy_analysis_dataset(tmp_path / "toy"), tmp_path)
    train, val, test = ds.train(900), ds.split("val"), ds.split("test")
    vX, vy = val.noisy(1.0), val.log_g
    rng = np.random.default_rng(5)
    bins = rng.integers(0, 3, size=900)
    bins[:MIN_TRAIN - 1] = 3                      # bin 3: too few rows → served by the global
    vbins = rng.integers(0, 3, size=val.n_rows)
    events = []
    (gm, _ginfo), ex = fit_experts(train, bins, vX, vy, vbins, k=4, kind="ridge",
                                   noise_level=1.0, seed=0,
                                   callbacks=[lambda kind, **kw: events.append(kw)])
    assert ex.experts[3] is None and ex.n_train == [int((bins == b).sum()) for b in range(4)]
    Xt = test.noisy(1.0)
    ref_g, _ = _fit_one("ridge", RowSubset(train, np.arange(900), 1.0, 0), vX, vy)
    np.testing.assert_allclose(gm.predict(Xt), ref_g.predict(Xt), rtol=1e-8, atol=1e-8)
    for b in range(3):
        m = vbins == b
        ref, info = _fit_one("ridge", RowSubset(train, np.flatnonzero(bins == b), 1.0, 0),
                             vX[m], vy[m])
        assert ex.info[b]["alpha"] == info["alpha"] and ex.info[b]["val_rows"] == int(m.sum())
        np.testing.assert_allclose(ex.experts[b].predict(Xt), ref.predict(Xt), rtol=1e-8,
                                   atol=1e-8)
    assert sum(1 for e in events if "one pass" in str(e.get("message", ""))) == 1


def test_l2_snr_is_cached_per_shard_and_equals_the_direct_formula(tmp_path, monkeypatch):
    """split_meta's L2 SNR comes from per-shard norms kept in the dataset's .cache: equal
    to snr_l2 on the arrays (bit for bit), on a row range too; a damaged cache file is
    recomputed; a read-only dataset folder still answers."""
    from engine.analysis.split_reads import l2_snr
    from engine.io.dataset import resolve_dataset
    from engine.io.snr import snr_l2
    from fakes import make_toy_analysis_dataset

    root = make_toy_analysis_dataset(tmp_path / "toy")
    ds = resolve_dataset(root, tmp_path)
    train = ds.train(900)
    want = snr_l2(train.read("flux"), train.read("error"), 0.5)
    np.testing.assert_array_equal(l2_snr(train, 0.5), want)
    cache = list((root / ".cache").glob("l2norms_train_0_*.npy"))
    assert len(cache) == 1
    np.testing.assert_array_equal(l2_snr(train.rows(100, 400), 0.5), want[100:400])
    cache[0].write_bytes(b"damaged")
    np.testing.assert_array_equal(l2_snr(train, 0.5), want)
    assert np.load(cache[0]).shape == (2, 900)
    fresh = resolve_dataset(make_toy_analysis_dataset(tmp_path / "ro"), tmp_path)

    def read_only(*_a, **_k):          # what a read-only dataset folder answers (even root)
        raise OSError(30, "Read-only file system")

    monkeypatch.setattr("engine.atomic.save_npy", read_only)
    np.testing.assert_array_equal(l2_snr(fresh.train(900), 0.5), want)
    assert not (tmp_path / "ro" / ".cache").exists() or not list(
        (tmp_path / "ro" / ".cache").glob("l2norms_*"))
