"""Predictive uncertainty: the scoring protocol on known cases (engine.eval.uncertainty),
the Mondrian conformal recalibration (engine.models.conformal), the β-NLL head and the
store's calibration views on a real run."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from scipy.stats import binom, norm

from engine.eval.uncertainty import LEVELS, binomial_range, score_uncertainty
from engine.models.conformal import MondrianConformal, merge_small, snr_categories


def gaussian_case(n: int, seed: int, sigma_scale: float = 1.0):
    """Stars with a known Gaussian error σ_i (depends on SNR); intervals ŷ ± z σ_i."""
    rng = np.random.default_rng(seed)
    snr = rng.uniform(2.5, 28.0, n)
    s = 0.6 / np.sqrt(snr)
    y = rng.uniform(1.0, 5.0, n)
    mu = y + rng.normal(0.0, s)
    st = s * sigma_scale
    z68, z95 = norm.ppf(0.5 + LEVELS[0] / 2), norm.ppf(0.975)
    b = {"lo68": mu - z68 * st, "hi68": mu + z68 * st, "lo95": mu - z95 * st,
         "hi95": mu + z95 * st}
    meta = pd.DataFrame({"snr": snr, "crlb_log_g": s ** 2, "T_eff": rng.uniform(3750, 6000, n),
                         "M_H": rng.uniform(-2.0, 0.5, n)})
    return y, mu, st, b, meta


def test_binomial_range_matches_scipy():
    lo, hi = binomial_range(400, 0.95)
    assert (lo, hi) == (binom.ppf(0.025, 400, 0.95) / 400, binom.ppf(0.975, 400, 0.95) / 400)
    assert lo < 0.95 < hi


def test_known_gaussian_gives_nominal_coverage_and_exact_scores():
    y, mu, s, b, meta = gaussian_case(4000, seed=1)
    sc = score_uncertainty(y, mu, s, b, meta)
    c68, c95 = sc.overall(LEVELS[0]), sc.overall(LEVELS[1])
    # 68.27 / 95.45-style nominal within the binomial error of n = 4000
    assert c68["lo"] <= c68["observed"] <= c68["hi"] and not c68["flag"]
    assert c95["lo"] <= c95["observed"] <= c95["hi"] and not c95["flag"]
    assert c95["width"] == pytest.approx(np.mean(2 * norm.ppf(0.975) * s))
    allrow = next(r for r in sc.scores if r["scheme"] == "all")
    # oracles: closed-form Gaussian NLL and CRPS, and σ equal to the CRLB σ
    z = (y - mu) / s
    nll = np.mean(0.5 * np.log(2 * np.pi) + np.log(s) + 0.5 * z ** 2)
    crps = np.mean(s * (z * (2 * norm.cdf(z) - 1) + 2 * norm.pdf(z) - 1 / np.sqrt(np.pi)))
    assert allrow["nll"] == pytest.approx(nll, rel=1e-9)
    assert allrow["crps"] == pytest.approx(crps, rel=1e-9)
    assert allrow["sigma_crlb_ratio"] == pytest.approx(1.0)
    snr_rows = [r for r in sc.scores if r["scheme"] == "snr"]
    assert sum(r["n"] for r in snr_rows) == 4000 and len(snr_rows) == 8
    gauss = [r for r in sc.coverage if r["scheme"] == "gauss"]
    assert sum(r["flag"] for r in gauss) <= 1     # reliability curve on the diagonal


def test_overconfident_model_is_flagged():
    y, mu, s, b, meta = gaussian_case(2000, seed=2, sigma_scale=0.5)   # σ halved
    sc = score_uncertainty(y, mu, s, b, meta)
    c68, c95 = sc.overall(LEVELS[0]), sc.overall(LEVELS[1])
    assert c68["flag"] and c68["observed"] < c68["lo"]          # ≈ 38 %, not 68 %
    assert c95["flag"] and c95["observed"] < 0.75               # ≈ 68 %, not 95 %
    assert "FLAGGED" in sc.summary_line()
    ratio = next(r for r in sc.scores if r["scheme"] == "all")["sigma_crlb_ratio"]
    assert ratio == pytest.approx(0.5)                           # below the physical limit


def test_snr_categories_and_small_bins_merge_inwards():
    assert snr_categories(np.array([1.0, 2.5, 3.5, 27.9, 40.0, np.nan])).tolist() == \
        [0, 0, 1, 7, 7, 0]
    cats = np.array([0] * 5 + [1] * 60 + [2] * 60 + [7] * 3 + [6] * 70)
    m = merge_small(cats, 50)
    assert m[0] == 1 and m[7] == 6 and m[1] == 1 and m[6] == 6


def test_mondrian_conformal_restores_coverage_of_a_miscalibrated_sigma():
    """A model whose own σ is wrong by a different factor per SNR range: after the
    per-bin recalibration on 'validation', held-out coverage is nominal in every bin."""
    y, mu, s, _, meta = gaussian_case(6000, seed=3)
    wrong = s * np.where(meta.snr < 8.5, 0.4, 2.5)
    cal, test = slice(0, 3000), slice(3000, 6000)
    mc = MondrianConformal().fit(y[cal], mu[cal], meta.snr[cal], wrong[cal])
    out = mc.predict(mu[test], meta.snr[test], wrong[test])
    sc = score_uncertainty(y[test], mu[test], out["sigma"], out,
                           meta.iloc[test].reset_index(drop=True))
    c95 = sc.overall(0.95)
    assert abs(c95["observed"] - 0.95) < 0.02
    per_bin = [r for r in sc.coverage if r["scheme"] == "snr" and r["nominal"] == 0.95
               and r["n"] >= 100]
    assert len(per_bin) >= 5
    assert sum(not (r["lo"] - 0.01 <= r["observed"] <= r["hi"] + 0.01) for r in per_bin) <= 1
    # σ after recalibration ≈ the true σ (ratio to the CRLB σ ≈ 1)
    assert next(r for r in sc.scores if r["scheme"] == "all")["sigma_crlb_ratio"] == \
        pytest.approx(1.0, abs=0.1)


def test_knn_difficulty_without_model_sigma():
    y, mu, s, _, meta = gaussian_case(4000, seed=4)
    mc = MondrianConformal().fit(y[:2000], mu[:2000], meta.snr[:2000])
    out = mc.predict(mu[2000:], meta.snr[2000:].to_numpy())
    assert mc.method_.startswith("knn-difficulty")
    # the difficulty tracks the true σ (low SNR → wider)
    assert np.corrcoef(out["sigma"], s[2000:])[0, 1] > 0.8
    cov = np.mean((y[2000:] >= out["lo95"]) & (y[2000:] <= out["hi95"]))
    assert abs(cov - 0.95) < 0.02
    assert set(mc.describe()) >= {"method", "library", "bin_map", "quantiles"}


def test_beta_nll_loss_and_head():
    torch = pytest.importorskip("torch")
    from engine.models.vit.model import SpecViT, ViTConfig
    from engine.models.vit.trainer import VAR_FLOOR, beta_nll_loss, make_loss
    assert make_loss("beta_nll") is beta_nll_loss
    y = torch.tensor([[0.5], [-1.0]])
    pred = torch.tensor([[0.0, 0.0], [0.0, np.log(4.0)]], dtype=torch.float32)
    var = torch.tensor([[1.0], [4.0]]) + VAR_FLOOR
    want = (0.5 * (var.log() + (y - 0) ** 2 / var) * var ** 0.5).mean()
    assert float(beta_nll_loss(pred, y)) == pytest.approx(float(want), rel=1e-6)
    cfg = ViTConfig(n_pixels=64, patch_size=16, stride=16, hidden=16, layers=1, heads=2,
                    heteroscedastic=True)
    assert SpecViT(cfg)(torch.zeros(3, 64)).shape == (3, 2)
    assert SpecViT(ViTConfig(n_pixels=64, patch_size=16, stride=16, hidden=16, layers=1,
                             heads=2))(torch.zeros(3, 64)).shape == (3, 1)


def test_vit_beta_nll_fit_predicts_sigma_in_dex(torch_one_thread):
    from engine.models.vit.estimator import SpecViTRegressor
    rng = np.random.default_rng(0)
    n, L = 256, 64
    y = rng.uniform(1, 5, n)
    X = (1 - 0.05 * np.outer(y - 3, np.abs(rng.normal(size=L)))).astype(np.float32)
    err = np.full_like(X, 0.01)
    est = SpecViTRegressor(patch_size=16, hidden=16, layers=1, heads=2, epochs=3,
                           batch_size=64, loss="beta_nll", device="cpu", compile=False,
                           dropout=0.0, attn_dropout=0.0)
    est.fit(X, y, error=err)
    sig = est.predict_sigma(X)
    assert sig.shape == (n,) and np.all(sig > 0) and np.all(np.isfinite(sig))
    assert est.predict(X).shape == (n,)
    mse = SpecViTRegressor(patch_size=16, hidden=16, layers=1, heads=2, epochs=1,
                           batch_size=64, device="cpu", compile=False).fit(X, y, error=err)
    assert mse.predict_sigma(X) is None


def test_run_stores_intervals_and_views(_isolated_workspace):
    """A real ridge run: σ and bounds per prediction, per-bin rows, both views."""
    import os
    import subprocess
    import sys

    from fakes import make_fake_dataset
    from engine.store.reader import query_df

    ws = _isolated_workspace
    make_fake_dataset(ws / "datasets" / "fake", train_shards=(400,), n_val=300, n_test=300,
                      n_pixels=32)
    env = {**os.environ, "LOGG_WORKSPACE": str(ws)}
    out = subprocess.run([sys.executable, "-c", "from engine.cli import main; main()", "run",
                          "ridge", "--size", "400", "--dataset", "fake"], env=env,
                         capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    (run_dir,) = list((ws / "runs").iterdir())
    p = pd.read_parquet(run_dir / "predictions.parquet")
    assert {"sigma", "sigma_raw", "lo68", "hi68", "lo95", "hi95"} <= set(p.columns)
    assert np.all(p.lo95 < p.lo68) and np.all(p.lo68 < p.y_pred) and np.all(p.hi95 > p.hi68)
    np.testing.assert_allclose(p.sigma, (p.hi68 - p.lo68) / 2)
    cal = query_df(ws, "SELECT * FROM calibration")
    assert len(cal) == 1 and bool(cal.has_sigma[0]) and int(cal.n[0]) == 300
    cov = np.mean((p.y_true >= p.lo95) & (p.y_true <= p.hi95))
    assert cal.cov95[0] == pytest.approx(cov)
    bins = query_df(ws, "SELECT * FROM coverage_by_bin WHERE scheme = 'teff_mh'")
    assert len(bins) == 9 and bins.n.sum() <= 300
    stored = query_df(ws, "SELECT count(*) AS n FROM predictions WHERE sigma IS NOT NULL")
    assert int(stored.n[0]) == 300
    # α was chosen on the first half of val_300 and the calibration used the other half
    import json
    facts = json.loads((run_dir / "metrics.json").read_text())["uncertainty"]["extra"]
    assert facts["validation"] == "disjoint" and facts["n_select"] == 150
    assert facts["n_val"] == 150


@pytest.mark.parametrize("n,select,calib,how", [
    (6000, 1000, 5000, "disjoint"), (2000, 1000, 1000, "disjoint"),
    (1999, 999, 1000, "disjoint"), (300, 150, 150, "disjoint"), (199, 199, 199, "shared")])
def test_validation_rows_choose_the_model_and_calibrate_apart(tmp_path, n, select, calib,
                                                               how):
    """The rows that choose the model never calibrate it (when the split is big enough)."""
    from fakes import make_fake_dataset
    from engine.io.dataset import Dataset
    from engine.runs.intervals import split_validation

    root = make_fake_dataset(tmp_path / "d", train_shards=(10,), n_val=n, n_test=10,
                             n_pixels=8)
    with Dataset(root) as ds:
        val = ds.split("val")
        a, b, got = split_validation(val)
        assert (a.n_rows, b.n_rows, got) == (select, calib, how)
        if how == "disjoint":
            ids = np.concatenate([a.log_g, b.log_g])
            np.testing.assert_array_equal(ids, val.log_g)
    assert split_validation(None) == (None, None, "none")


def test_moe_head_load_balancing_oracle_and_shapes():
    torch = pytest.importorskip("torch")
    from engine.models.vit.model import SpecViT, ViTConfig
    from engine.models.vit.moe_head import MoEHead, load_balancing_loss
    uniform = torch.full((8, 4), 0.25)
    assert float(load_balancing_loss(uniform)) == pytest.approx(1.0)
    onehot = torch.zeros(8, 4)
    onehot[:, 2] = 1.0
    assert float(load_balancing_loss(onehot)) == pytest.approx(4.0)
    head = MoEHead(16, 2, 3)
    out = head(torch.randn(5, 16))
    assert out.shape == (5, 2) and head.last_gates.shape == (5, 3)
    torch.testing.assert_close(head.last_gates.sum(1), torch.ones(5))
    cfg = ViTConfig(n_pixels=64, patch_size=16, stride=16, hidden=16, layers=1, heads=2,
                    head="moe", n_experts=3)
    model = SpecViT(cfg)
    assert model(torch.zeros(2, 64)).shape == (2, 1) and model.head.aux_loss.item() >= 1.0
    with pytest.raises(ValueError, match="head must be"):
        ViTConfig(head="tree")


def test_multitask_and_moe_runs_reach_the_store(_isolated_workspace):
    """`--set targets=…` and the vit-moe-cpu preset from the CLI: R² per label in
    run_facts, σ from a β-NLL MoE head calibrated like every other run."""
    import os
    import subprocess
    import sys

    from fakes import make_fake_dataset
    from engine.store.reader import query_df

    ws = _isolated_workspace
    make_fake_dataset(ws / "datasets" / "fake", train_shards=(300,), n_val=200, n_test=200,
                      n_pixels=64)
    env = {**os.environ, "LOGG_WORKSPACE": str(ws), "OMP_NUM_THREADS": "1"}
    base = [sys.executable, "-c", "from engine.cli import main; main()", "run", "vit",
            "--size", "300", "--dataset", "fake", "--set", "epochs=1"]
    for extra in (["--set", "targets=log_g,T_eff,M_H"],
                  ["--preset", "vit-moe-cpu", "--set", "loss=beta_nll"]):
        out = subprocess.run(base + extra, env=env, capture_output=True, text=True,
                             timeout=300)
        assert out.returncode == 0, out.stderr[-2000:]
    facts = query_df(ws, "SELECT key, num_value FROM run_facts WHERE key LIKE 'targets.%.r2'")
    assert set(facts.key) == {"targets.log_g.r2", "targets.T_eff.r2", "targets.M_H.r2"}
    lb = query_df(ws, "SELECT r.run_id, m.value AS r2 FROM runs r JOIN run_metrics m "
                      "USING (run_id) WHERE m.metric = 'r2' AND m.subset = 'all'")
    logg = float(facts.set_index("key").num_value["targets.log_g.r2"])
    assert logg in [pytest.approx(v) for v in lb.r2]       # the scored label is log g
    cal = query_df(ws, "SELECT preset, has_sigma FROM calibration ORDER BY preset")
    assert cal.preset.tolist() == ["vit-cpu", "vit-moe-cpu"] and cal.has_sigma.all()
    moe = query_df(ws, "SELECT text_value FROM run_params WHERE key = 'head'")
    assert "moe" in moe.text_value.tolist()


def test_report_section_warns_on_overconfident_and_names_runs_without_sigma(tmp_path):
    from _uq_stores import calibration_workspace
    from engine.report.document import build_report

    ws = calibration_workspace(tmp_path / "ws")
    text = build_report(ws, compare=False)
    section = text.split("## Predictive uncertainty")[1].split("\n---")[0]
    assert "⚠ ridge" in section and "σ is too small" in section
    assert "No σ for: lgbm" in section
    vit_line = next(line for line in section.splitlines() if line.startswith("| vit"))
    assert "| 1.00 |" in vit_line          # σ equals the CRLB σ in this store
    assert "### Per SNR bin" in section


def test_intervals_skip_without_validation_and_never_fail_the_run():
    from engine.runs.intervals import predict_intervals

    class Broken:
        def predict(self, est, ctx):
            raise RuntimeError("boom")

    class Val:
        n_rows, name = 500, "val_500"
        params = pd.DataFrame({"log_g": np.ones(500), "snr": np.full(500, 5.0)})

        def noisy(self, level):
            return np.zeros((500, 4), np.float32)

    out, facts = predict_intervals(Broken(), None, None, None, 1.0, np.zeros(3))
    assert out is None and facts["status"] == "skipped" and "validation" in facts["reason"]
    logged = []
    out, facts = predict_intervals(Broken(), None, Val(), None, 1.0, np.zeros(3),
                                   lambda *a, **k: logged.append(k))
    assert out is None and facts == {"status": "failed", "reason": "RuntimeError: boom"}
    assert any("calibration failed" in k.get("message", "") for k in logged)
