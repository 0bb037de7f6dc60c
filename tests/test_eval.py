"""Value tests of the evaluation protocol against independent oracles (sklearn, numpy,
hand computation) and of the documented bin edge convention at exact edges."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import mean_absolute_error, mean_squared_error, r2_score

from engine.eval import bins as B
from engine.eval import metrics as M
from engine.eval.bootstrap import bootstrap_ci, resampled_r2_mae
from engine.eval.r2max import efficiency, r2_max
from engine.eval.protocol import BIN_FIELDS, Evaluation, evaluate
from _runfolders import synthetic_test_split


@pytest.fixture(scope="module")
def data():
    rng = np.random.default_rng(1)
    meta = synthetic_test_split(2000, seed=3)
    y = meta["log_g"].to_numpy()
    return y, y + rng.normal(0.05, 0.5, y.size), meta


def test_point_metrics_match_sklearn_and_numpy(data):
    y, p, _ = data
    m = M.point_metrics(y, p)
    assert m["r2"] == pytest.approx(r2_score(y, p), abs=1e-12)
    assert m["mae"] == pytest.approx(mean_absolute_error(y, p), abs=1e-12)
    assert m["rmse"] == pytest.approx(np.sqrt(mean_squared_error(y, p)), abs=1e-12)
    assert m["bias"] == pytest.approx(np.median(p - y), abs=1e-12)
    assert m["p90"] == pytest.approx(np.sort(np.abs(p - y))[int(0.9 * (y.size - 1))], abs=0.01)
    cov = np.cov(y, p, bias=True)
    assert m["slope"] == pytest.approx(cov[0, 1] / cov[0, 0], abs=1e-9)
    assert m["n"] == y.size


def test_r2_undefined_for_constant_or_tiny_sets():
    assert np.isnan(M.r2(np.array([2.0, 2.0]), np.array([1.0, 3.0])))
    assert np.isnan(M.r2(np.array([2.0]), np.array([2.0])))
    assert np.isnan(M.mae(np.array([]), np.array([])))


def test_teff_mh_edges_follow_the_documented_convention():
    teff = np.array([3750, 4499.99, 4500, 5250, 6000, 6000.01, 3749.99, 4500, 5000])
    mh = np.array([-2.0, -1.0, -1.0, 0.0, 0.5, 0.0, 0.0, 0.50001, -1.5])
    got = B.assign_teff_mh(teff, mh)
    # Cool/poor, Cool/Solar, Mid/Solar, Hot/rich, Hot/rich (closed end), out, out, out, Mid/poor
    assert got.tolist() == [0, 1, 4, 8, 8, -1, -1, -1, 3]
    assert B.TEFF_MH_LABELS == ("Cool Metal-poor", "Cool Solar", "Cool Metal-rich",
                                "Mid Metal-poor", "Mid Solar", "Mid Metal-rich",
                                "Hot Metal-poor", "Hot Solar", "Hot Metal-rich")
    assert B.teff_mh_bounds(5) == ((4500.0, 5250.0), (0.0, 0.5))


def test_interval_schemes_at_exact_edges():
    snr = B.SNR.assign(np.array([2.5, 3.5, 8.5, 12.5, 18.0, 28.0, 2.49, 28.01, np.nan]))
    assert snr.tolist() == [0, 1, 5, 6, 7, 7, -1, -1, -1]
    l2 = B.SNR_L2.assign(np.array([0.1, 2.0, 2.0001, 4.0, 7.0, 7.01, 100.0]))
    assert l2.tolist() == [0, 0, 1, 1, 2, 3, 3]  # X <=2, L (2,4], M (4,7], H >7
    assert B.MAG.assign(np.array([20.5, 21.0, 22.49, 22.5, 22.6])).tolist() == [0, 1, 3, 3, -1]
    assert B.LOGG.assign(np.array([1.0, 2.0, 4.99, 5.0, 0.5])).tolist() == [0, 1, 3, 3, -1]


def test_bootstrap_matches_a_naive_loop_and_is_seeded(data):
    y, p, _ = data
    y, p = y[:300], p[:300]
    r2s, maes = resampled_r2_mae(y, p, n_boot=200, seed=7)
    idx = np.random.default_rng(7).integers(0, y.size, size=(200, y.size))  # same stream
    naive = np.array([r2_score(y[i], p[i]) for i in idx])
    np.testing.assert_allclose(r2s, naive, atol=1e-10)
    np.testing.assert_allclose(maes, [np.mean(np.abs(p[i] - y[i])) for i in idx], atol=1e-12)
    ci1, ci2 = bootstrap_ci(y, p, seed=7), bootstrap_ci(y, p, seed=7)
    assert ci1 == ci2
    assert bootstrap_ci(y, p, seed=8) != ci1
    assert ci1["r2_lo"] < M.r2(y, p) < ci1["r2_hi"]
    assert ci1["mae_lo"] < M.mae(y, p) < ci1["mae_hi"]
    lo, hi = np.percentile(naive, [2.5, 97.5])
    assert (ci1["r2_lo"], ci1["r2_hi"]) == pytest.approx((lo, hi), abs=1e-10)


def test_r2_max_and_eta_on_a_hand_computed_case():
    y = np.array([1.0, 2.0, 3.0])  # Var = 2/3
    crlb = np.array([0.1, 0.5, 1.0])  # min(., 2/3) = 0.1, 0.5, 2/3 → mean 0.42222
    assert r2_max(crlb, np.var(y)) == pytest.approx(1 - (0.1 + 0.5 + 2 / 3) / 3 / (2 / 3))
    assert r2_max(crlb, 1.6667) == pytest.approx(1 - (1.6 / 3) / 1.6667)
    p = y + np.array([0.3, -0.3, 0.6])  # MSE = (0.09 + 0.09 + 0.36) / 3 = 0.18
    assert efficiency(crlb, y, p) == pytest.approx((1.6 / 3) / 0.18)
    # the same numbers through evaluate(): all three rows in SNR bin 3 ([5.5, 6.5))
    meta = pd.DataFrame({"snr": [6.0] * 3, "snr_l2": [3.0] * 3, "mag": [21.2] * 3,
                         "T_eff": [4000.0] * 3, "M_H": [-1.5] * 3, "crlb_log_g": crlb})
    ev = evaluate(y, p, meta, eval_key={}, n_boot=20)
    row = next(b for b in ev.bins if b["scheme"] == "snr" and b["bin"] == 3)
    assert row["n"] == 3
    assert row["r2_max"] == pytest.approx(1 - (0.1 + 0.5 + 2 / 3) / 3 / (2 / 3))
    assert row["eta"] == pytest.approx((1.6 / 3) / 0.18)
    assert ev.overall["r2_max_pop"] == pytest.approx(row["r2_max"])


def test_evaluate_bins_equal_sklearn_within_each_bin(data):
    y, p, meta = data
    ev = evaluate(y, p, meta, eval_key={"split": "test"}, n_boot=50, seed=1)
    assert ev.overall["r2"] == pytest.approx(r2_score(y, p), abs=1e-12)
    assert {b["scheme"] for b in ev.bins} == set(B.SCHEME_NAMES)
    assert len(ev.bins) == 8 + 4 + 4 + 4 + 9
    tm = B.assign_teff_mh(meta["T_eff"], meta["M_H"])
    for b in ev.bins:
        assert set(b) == set(BIN_FIELDS)
        if b["scheme"] == "teff_mh":
            mask = tm == b["bin"]
        elif b["scheme"] == "logg":
            mask = B.LOGG.assign(y) == b["bin"]
        else:
            scheme = {"snr": B.SNR, "snr_l2": B.SNR_L2, "mag": B.MAG}[b["scheme"]]
            mask = scheme.assign(meta[scheme.column]) == b["bin"]
        assert b["n"] == mask.sum()
        if mask.sum() > 2 and np.var(y[mask]) > 0:
            assert b["r2"] == pytest.approx(r2_score(y[mask], p[mask]), abs=1e-10)
            assert b["mae"] == pytest.approx(mean_absolute_error(y[mask], p[mask]), abs=1e-12)
    cov = ev.extra["subsets"]["covered"]
    assert cov["n"] == (tm >= 0).sum()
    assert cov["coverage"] == pytest.approx((tm >= 0).mean())
    assert cov["r2"] == pytest.approx(r2_score(y[tm >= 0], p[tm >= 0]), abs=1e-12)


def test_to_json_is_strict_json_and_round_trips(data):
    y, p, meta = data
    meta = meta.drop(columns=["snr_l2"])
    meta.loc[:, "snr"] = 3.0  # every other SNR bin is empty → null metrics
    ev = evaluate(y[:200], p[:200], meta.iloc[:200], eval_key={"split": "test"}, n_boot=20)
    text = json.dumps(ev.to_json(), allow_nan=False)
    back = Evaluation.from_json(json.loads(text))
    assert "snr_l2" in back.extra["skipped_schemes"]
    empty = next(b for b in back.bins if b["scheme"] == "snr" and b["bin"] == 7)
    assert empty["n"] == 0 and empty["r2"] is None
    assert back.overall["r2"] == pytest.approx(ev.overall["r2"])
    assert f"{ev.overall['r2']:.4f}" in ev.summary_line()


def test_evaluate_rejects_misaligned_inputs(data):
    y, p, meta = data
    with pytest.raises(ValueError, match="aligned"):
        evaluate(y, p[:-1], meta, eval_key={})


def test_a_nan_prediction_makes_metrics_and_cis_null_not_optimistic():
    y = np.linspace(1, 5, 50)
    p = y.copy()
    p[3] = np.nan
    meta = pd.DataFrame({"snr": np.full(50, 5.0), "T_eff": np.full(50, 4000.0),
                         "M_H": np.zeros(50)})
    out = evaluate(y, p, meta, eval_key={}, n_boot=20).to_json()
    o = out["overall"]
    assert [o[k] for k in ("r2", "r2_lo", "r2_hi", "mae", "slope")] == [None] * 5
    assert out["extra"]["n_nonfinite_pred"] == 1
