"""Analysis building blocks against oracles: ρ, the de-leakage pass rule, MoE bin
assignment with edge-clamp, mask alignment, grid-Fisher CRLBs, records → store."""

from __future__ import annotations

import json

import duckdb
import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import r2_score

from engine.analysis.moe import oracle as O
from engine.analysis.ceiling import detect_axes, grid_crlb, r2_max_bayes, r2_max_median
from engine.analysis.deleakage import passed
from engine.analysis.moe.gates import route
from engine.analysis.moe.assign import get_bins
from engine.analysis.record import AnalysisResult, write_analysis
from engine.analysis.moe.rho import rho, rho_with_ci


def _toy(n=400, seed=0):
    rng = np.random.default_rng(seed)
    y = rng.uniform(1, 5, n)
    oracle = y + rng.normal(0, 0.3, n)
    glob = y + rng.normal(0, 0.8, n)
    return y, oracle, glob


def test_rho_is_one_for_the_oracle_and_zero_for_the_global_model():
    y, o, g = _toy()
    r, lo, hi = rho_with_ci(y, o, o, g, n_boot=200)
    assert r == pytest.approx(1.0, abs=1e-12)
    assert (lo, hi) == (pytest.approx(1.0), pytest.approx(1.0))
    r, lo, hi = rho_with_ci(y, g, o, g, n_boot=200)
    assert r == pytest.approx(0.0, abs=1e-12)
    assert (lo, hi) == (pytest.approx(0.0), pytest.approx(0.0))
    half = 0.5 * (o + g)
    r_half = rho(r2_score(y, half), r2_score(y, o), r2_score(y, g))
    assert rho_with_ci(y, half, o, g, n_boot=50)[0] == pytest.approx(r_half, abs=1e-12)
    assert np.isnan(rho(0.5, 0.4, 0.4))  # oracle = global: undefined, not inf


def test_pass_rule_is_strict_at_both_boundaries():
    assert passed(0.0499, 0.51)
    assert not passed(0.0500, 0.9)      # the research's S3_quantiles_21 case: 0.0500 fails
    assert not passed(0.01, 0.5)        # SNR R² must exceed 0.5
    assert passed(-0.0014, 0.8078)      # S2_template_scale


def test_teff_mh_bins_exact_edges_and_edge_clamp():
    b = get_bins("teff-mh")
    meta = {"T_eff": np.array([3750, 4499.9, 4500, 6000, 6100, 3000, 5000, 5000, np.nan]),
            "M_H": np.array([-2.0, -1.0, 0.0, 0.5, 0.75, -2.5, -0.999, 0.6, 0.0])}
    raw, inr = b.assign(meta, out_of_range="fallback")
    assert raw.tolist() == [0, 1, 5, 8, -1, -1, 4, -1, -1]
    assert inr.tolist() == [True, True, True, True, False, False, True, False, False]
    clamped, inr2 = b.assign(meta, out_of_range="clamp")
    # 6100 K/+0.75 → Hot Metal-rich; 3000 K/−2.5 → Cool Metal-poor; 5000 K/+0.6 → Mid Metal-rich
    assert clamped.tolist() == [0, 1, 5, 8, 8, 0, 4, 5, -1]
    assert inr2.tolist() == inr.tolist()  # coverage is about the true labels, not the policy
    assert b.labels[3] == "Mid Metal-poor" and b.k == 9


def test_snr_bins_are_left_open_right_closed():
    b = get_bins("snr")
    idx, _ = b.assign({"snr_l2": np.array([0.5, 2.0, 2.0001, 4.0, 7.0, 7.01, 50.0])})
    assert idx.tolist() == [0, 0, 1, 1, 2, 3, 3]
    assert b.labels == ("X", "L", "M", "H")


def test_moe_overall_is_mask_aligned():
    rng = np.random.default_rng(3)
    n, k = 300, 9
    y = rng.uniform(1, 5, n)
    P = y[:, None] + rng.normal(0, 0.4, (n, k))
    g = y + rng.normal(0, 0.9, n)
    bins = rng.integers(0, k, n)
    in_range = rng.random(n) < 0.8
    oracle = O.route_oracle(P, g, bins)
    assert np.array_equal(oracle, P[np.arange(n), bins])
    rows = {r["subset"]: r for r in O.overall_rows(y, oracle, g, in_range, n_boot=100)}
    cov = rows["covered"]
    assert cov["n"] == in_range.sum()
    assert cov["r2_global"] == pytest.approx(r2_score(y[in_range], g[in_range]), abs=1e-12)
    assert cov["r2_oracle"] == pytest.approx(r2_score(y[in_range], oracle[in_range]), abs=1e-12)
    assert cov["r2_global"] != pytest.approx(r2_score(y, g), abs=1e-6)  # not the full set
    lo, hi = cov["delta_r2_ci"]
    assert lo < cov["delta_r2"] < hi
    fb = O.route_oracle(P, g, np.where(in_range, bins, -1))  # fallback → global
    assert np.array_equal(fb[~in_range], g[~in_range])


def test_routing_soft_hard_fallback():
    P = np.array([[1.0, 3.0], [2.0, 4.0]])
    g = np.array([10.0, 20.0])
    p = np.array([[0.3, 0.7], [0.55, 0.45]])
    assert route(p, P, g, "soft", 0.5)[0].tolist() == pytest.approx([2.4, 2.9])
    assert route(p, P, g, "hard", 0.5)[0].tolist() == [3.0, 2.0]
    pred, fb = route(p, P, g, "fallback", 0.6)
    assert pred.tolist() == pytest.approx([2.4, 20.0]) and fb.tolist() == [False, True]


def _linear_grid(edge_missing=False):
    """μ(θ) = A θ + b on a regular 3-axis grid: central differences are exact."""
    rng = np.random.default_rng(7)
    teff = np.arange(4000.0, 5001.0, 250.0)
    logg = np.arange(1.0, 5.01, 0.5)
    mh = np.arange(-1.0, 0.51, 0.25)
    T, G, M = np.meshgrid(teff, logg, mh, indexing="ij")
    theta = np.column_stack([T.ravel(), G.ravel(), M.ravel()])
    W = 64
    A = rng.normal(size=(W, 3)) * np.array([1e-4, 0.05, 0.08])
    flux = theta @ A.T + 1.0
    error = np.tile(rng.uniform(0.01, 0.05, W), (len(theta), 1))
    params = pd.DataFrame(theta, columns=["T_eff", "log_g", "M_H"])
    params["C_M"] = 0.0
    return flux, error, params, A


def test_grid_fisher_equals_the_analytic_schur_crlb():
    flux, error, params, A = _linear_grid()
    axes = detect_axes(params)
    assert [a for a, _ in axes] == ["T_eff", "log_g", "M_H"]  # C_M constant → skipped
    assert dict(axes) == pytest.approx({"T_eff": 250.0, "log_g": 0.5, "M_H": 0.25})
    res = grid_crlb(flux, error, params, noise_level=2.0)
    F = A.T @ (A / (2.0 * error[0])[:, None] ** 2)
    crlb = np.linalg.inv(F)[1, 1]
    assert res["ok"].all()  # one-sided differences at the edges (exact for a linear model)
    assert np.allclose(res["crlb"], crlb, rtol=1e-8)
    assert np.allclose(res["crlb_cond"], 1 / F[1, 1], rtol=1e-8)
    assert np.allclose(res["schur"], (1 / crlb) / F[1, 1], rtol=1e-8)
    skip = grid_crlb(flux, error, params, noise_level=2.0, edge="skip")
    interior = ((params["T_eff"] > 4000) & (params["T_eff"] < 5000) & (params["log_g"] > 1)
                & (params["log_g"] < 5) & (params["M_H"] > -1) & (params["M_H"] < 0.5))
    assert skip["ok"].tolist() == interior.tolist()
    assert np.allclose(skip["crlb"][interior], crlb, rtol=1e-8)


def test_ceiling_aggregates():
    c = np.array([0.1, 1.0, 4.0])
    var = 2.0
    assert r2_max_median(c, var) == pytest.approx(0.5)          # clip(1 − c/var): .95, .5, 0
    bayes = 1 - np.mean(1 / (1 / c + 1 / var)) / var
    assert r2_max_bayes(c, var) == pytest.approx(bayes)
    from engine.eval.r2max import r2_max
    assert r2_max_bayes(c, var) >= r2_max(c, var)  # the prior only adds information


def test_record_ingest_is_idempotent_and_views_pivot(_isolated_workspace):
    from engine.store.ingest_analysis import ingest_analysis

    ws = _isolated_workspace
    recs = [{"section": "strategy", "strategy": "S4_snr_only", "definition": "norm",
             "n_features": 1, "logg_r2_train": 0.0, "logg_r2_test": 0.01,
             "snr_r2_train": 0.8, "snr_r2_test": 0.79, "passed": True},
            {"section": "strategy", "strategy": "S0_baseline", "definition": "raw",
             "n_features": 4096, "logg_r2_train": 0.8, "logg_r2_test": 0.0500,
             "snr_r2_train": 0.97, "snr_r2_test": 0.97, "passed": False}]
    res = AnalysisResult("deleakage", {"dataset": "x", "size": 10}, recs)
    d = write_analysis(ws, res)
    assert (d / "analysis.json").exists() and (d / "rows.parquet").exists()
    for _ in range(2):
        assert ingest_analysis(ws, d) == res.analysis_id
    con = duckdb.connect(str(ws / "results.duckdb"), read_only=True)
    try:
        assert con.execute("SELECT count(*) FROM analysis_rows").fetchone()[0] == 12  # 6 × 2
        rows = con.execute("SELECT strategy, n_features, logg_r2_test, passed FROM deleakage "
                           "ORDER BY strategy").fetchall()
        params = json.loads(con.execute("SELECT params FROM analyses").fetchone()[0])
    finally:
        con.close()
    assert rows == [("S0_baseline", 4096.0, 0.05, False), ("S4_snr_only", 1.0, 0.01, True)]
    assert params["size"] == 10


def test_gate_pca_finds_the_stellar_signal_under_heteroscedastic_sky_noise():
    """The gate PCA standardises pixels before fitting: a smooth low-variance stellar
    component must own PC1 even when a few 'sky-line' pixels carry 100× larger
    independent noise (raw-flux PCA would spend PC1 on those pixels)."""
    from engine.analysis.moe.gate_features import GateFeaturizer

    rng = np.random.default_rng(0)
    n, wave = 800, np.linspace(8100.0, 8900.0, 600)
    a = rng.normal(size=n)  # latent 'T_eff' amplitude
    template = np.linspace(-1.0, 1.0, wave.size)  # continuum slope
    sd = np.full(wave.size, 0.01)
    sky = rng.choice(wave.size, 30, replace=False)
    sd[sky] = 1.0
    flux = 0.5 + 0.01 * a[:, None] * template + rng.normal(size=(n, wave.size)) * sd
    feat = GateFeaturizer("phys13", wave).fit(flux)
    F = feat.transform(flux)
    assert F.shape == (n, 13) and np.all(np.isfinite(F))
    pc1 = F[:, 9]
    assert abs(np.corrcoef(pc1, a)[0, 1]) > 0.95
    # oracle for the map itself: PCs = PCA(standardised flux) of the same rows
    z = (flux - flux.mean(0)) / flux.std(0)
    _u, _s, vt = np.linalg.svd(z - z.mean(0), full_matrices=False)
    assert abs(np.corrcoef(pc1, z @ vt[0])[0, 1]) > 0.999999
