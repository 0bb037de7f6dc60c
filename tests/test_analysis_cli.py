"""End-to-end: each analysis command on a small REAL pfsspec dataset lands rows in the
store, and the stored numbers agree with independent recomputation."""

from __future__ import annotations

import json

import duckdb
import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from engine.cli import app
from fakes import make_toy_analysis_dataset
from engine.io.dataset import Dataset
from engine.io.pfsspec import write_spectra

@pytest.fixture(scope="module")
def dataset(tmp_path_factory):
    return make_toy_analysis_dataset(tmp_path_factory.mktemp("analysis") / "toy")


def _cli(*args):
    res = CliRunner().invoke(app, [*args, "--json"])
    assert res.exit_code == 0, res.output
    return json.loads(res.output)


def _ro(ws):
    return duckdb.connect(str(ws / "results.duckdb"), read_only=True)


def test_moe_oracle_ridge_teff_mh(dataset, _isolated_workspace):
    out = _cli("moe", "oracle", "--dataset", str(dataset), "--size", "900", "--n-boot", "200")
    test = Dataset(dataset).split("test").params
    covered = ((test.T_eff >= 3750) & (test.T_eff <= 6000) & (test.M_H >= -2) & (test.M_H <= 0.5))
    with _ro(_isolated_workspace) as con:
        bins = con.execute("SELECT bin, n_train, n_test, r2_oracle, r2_global, delta_r2 "
                           "FROM moe_bins ORDER BY bin").fetchall()
        over = {r[0]: r[1:] for r in con.execute(
            "SELECT subset, n, coverage, r2_oracle, r2_global, delta_r2, delta_r2_lo, "
            "delta_r2_hi FROM moe_overall").fetchall()}
    assert [b[0] for b in bins] == list(range(9))
    assert sum(b[1] for b in bins) == 900 and sum(b[2] for b in bins) == 300  # clamp: all rows
    assert all(b[5] == pytest.approx(b[3] - b[4]) for b in bins)
    assert over["covered"][0] == covered.sum() and over["all"][0] == 300
    assert over["covered"][1] == pytest.approx(covered.sum() / 300)
    n, cov, ro, rg, d, lo, hi = over["covered"]
    assert d == pytest.approx(ro - rg) and lo <= d <= hi and ro > rg  # experts help here
    assert out["MoE oracle overall (mask-aligned)"][0]["r2_oracle"] == pytest.approx(
        over[out["MoE oracle overall (mask-aligned)"][0]["subset"]][2])


@pytest.mark.slow
def test_moe_oracle_snr_lgbm_fallback(dataset, _isolated_workspace):
    _cli("moe", "oracle", "--bins", "snr", "--expert", "lgbm", "--dataset", str(dataset),
         "--size", "900", "--out-of-range", "fallback", "--n-boot", "100")
    with _ro(_isolated_workspace) as con:
        rows = con.execute("SELECT label, expert, n_train, n_test FROM moe_bins").fetchall()
        kind = con.execute("SELECT expert_kind, out_of_range FROM moe_overall LIMIT 1").fetchone()
    assert [r[0] for r in rows] == ["X", "L", "M", "H"]
    assert sum(r[3] for r in rows) == 300 and kind == ("lgbm", "fallback")
    assert {r[1] for r in rows if r[2] >= 10} <= {"lgbm"}


@pytest.mark.parametrize("bins,gate,routing", [("teff-mh", "logreg", "soft"),
                                               ("snr", "mlp", "fallback")])
def test_moe_gate(dataset, _isolated_workspace, bins, gate, routing, capsys):
    out = _cli("moe", "gate", "--bins", bins, "--gate", gate, "--routing", routing, "--dataset",
         str(dataset), "--size", "900", "--n-boot", "100")
    with _ro(_isolated_workspace) as con:
        o = con.execute("SELECT n, r2_gate, r2_oracle, r2_global, rho, rho_lo, rho_hi, "
                        "accuracy, fallback_rate, tau, features FROM moe_gates "
                        "WHERE section = 'overall' AND subset = 'all'").fetchone()
        conf = con.execute("SELECT sum(value) FROM analysis_rows "
                           "WHERE extra->>'section' = 'confusion'").fetchone()[0]
        nbins = con.execute("SELECT count(*) FROM moe_gates WHERE section = 'bin'").fetchone()[0]
    n, rg, ro, rb, r, lo, hi, acc, fb, tau, feats = o
    if r is None:  # ρ undefined (engine.analysis.moe.rho): the oracle's gain is not established
        _cli("moe", "oracle", "--bins", bins, "--dataset", str(dataset), "--size", "900",
             "--n-boot", "100")  # same experts, same resamples → the same gain CI
        with _ro(_isolated_workspace) as con:
            gain_lo = con.execute("SELECT delta_r2_lo FROM moe_overall "
                                  "WHERE subset = 'all'").fetchone()[0]
        assert (lo, hi) == (None, None) and (ro - rb <= 1e-3 or gain_lo <= 0)
        from engine.cli.analysis import _explain_undefined_rho
        capsys.readouterr()
        _explain_undefined_rho(_isolated_workspace, out["analysis_id"])
        assert "ρ (all): n/a (oracle gain" in capsys.readouterr().out
    else:
        assert r == pytest.approx((rg - rb) / (ro - rb)) and lo <= r <= hi
    k = 9 if bins == "teff-mh" else 4
    assert conf == n == 300 and nbins == k and 0 <= acc <= 1 and 0 <= fb <= 1
    assert (tau, feats) == ((0.5, "phys13") if bins == "teff-mh" else (0.4, "quality10"))
    if routing == "soft":
        assert fb == 0


def test_deleakage(dataset, _isolated_workspace):
    out = _cli("deleakage", "--dataset", str(dataset), "--size", "900")
    rows = {r["strategy"]: r for r in out["Error-vector de-leakage"]}
    assert len(rows) == 9
    assert rows["S0_baseline"]["n_features"] == 256 and rows["S3_quantiles_21"]["n_features"] == 21
    for r in rows.values():
        assert r["passed"] == (r["logg_r2_test"] < 0.05 and r["snr_r2_test"] > 0.5)
    assert not rows["S0_baseline"]["passed"] and rows["S4_snr_only"]["passed"]
    with _ro(_isolated_workspace) as con:
        assert con.execute("SELECT count(*) FROM deleakage").fetchone()[0] == 9
    done = _cli("export", "research", str(_isolated_workspace / "export"))
    assert done["results/logg_snr_moe/deleakage_results.csv"] == "written"
    assert done["results/scaling_oracle_moe/per_bin_results.csv"] == "no data"
    csv = pd.read_csv(_isolated_workspace / "export/results/logg_snr_moe/deleakage_results.csv")
    assert dict(zip(csv.strategy, csv.passed)) == {k: r["passed"] for k, r in rows.items()}
    assert csv.n_features.dtype.kind == "i"


@pytest.mark.parametrize("cmd", [
    ("moe", "oracle", "--bins", "snr", "--n-boot", "50"),
    ("moe", "gate", "--bins", "teff-mh", "--gate", "logreg", "--n-boot", "50"),
    ("deleakage",)])
def test_if_missing_shows_what_the_store_holds_and_computes_nothing(dataset, cmd,
                                                                    _isolated_workspace):
    """`--if-missing` (the study's analysis steps): the id it looks for before any work is
    the one the computed analysis gets; when the store holds it, the stored rows are shown
    and nothing is written; other parameters are computed."""
    args = (*cmd, "--dataset", str(dataset), "--size", "900")
    first = _cli(*args, "--if-missing")                  # not there yet: computed
    assert "skipped" not in first
    folder = _isolated_workspace / "analyses" / first["analysis_id"]
    stamp = (folder / "analysis.json").stat().st_mtime_ns
    again = _cli(*args, "--if-missing")
    assert again["skipped"] is True and again["analysis_id"] == first["analysis_id"]
    tables = [k for k in first if isinstance(first[k], list)]
    assert tables and all(again[t] == first[t] for t in tables)
    assert (folder / "analysis.json").stat().st_mtime_ns == stamp
    res = CliRunner().invoke(app, [*args, "--if-missing"])
    assert res.exit_code == 0 and "is already in the store" in res.output
    other = _cli(*(a if a != "900" else "600" for a in args), "--if-missing")
    assert "skipped" not in other and other["analysis_id"] != first["analysis_id"]
    with _ro(_isolated_workspace) as con:
        assert con.execute("SELECT count(*) FROM analyses").fetchone()[0] == 2


def test_ceiling_dataset(dataset, _isolated_workspace):
    _cli("ceiling", "--dataset", str(dataset))
    p = Dataset(dataset).split("test").params
    var = float(np.var(p.log_g))
    expect = 1 - np.mean(np.minimum(p.crlb_log_g, var)) / var
    with _ro(_isolated_workspace) as con:
        allrow = con.execute("SELECT n, r2_max_pop, sigma_p50 FROM ceiling "
                             "WHERE scheme = 'all'").fetchone()
        nsnr = con.execute("SELECT sum(n) FROM ceiling WHERE scheme = 'mag'").fetchone()[0]
    assert allrow[0] == 300 and allrow[1] == pytest.approx(expect, abs=1e-12)
    assert allrow[2] == pytest.approx(np.median(np.sqrt(p.crlb_log_g)))
    assert nsnr == 300  # mag 20.5–22.5 covers every row


def test_results_page_draws_the_ceiling_with_the_prior(dataset, _isolated_workspace):
    """The R²-vs-SNR figure's dashed line is the newest ceiling analysis's R²_max Bayes per
    SNR bin of the same build (a trained model may pass the unbiased CRLB ceiling at low
    SNR by shrinking to the prior, never this one)."""
    from engine.report import figures as F
    from engine.store.reader import StoreReader

    _cli("ceiling", "--dataset", str(dataset))
    with StoreReader(_isolated_workspace) as r:
        prior = r.ceiling_snr(fingerprint=Dataset(dataset).fingerprint())
        assert r.ceiling_snr(fingerprint="0" * 16).empty         # another build: none
    with _ro(_isolated_workspace) as con:
        want = np.array(con.execute("SELECT (lo + hi) / 2, r2_max_bayes FROM ceiling WHERE "
                                    "section = 'dataset' AND scheme = 'snr' ORDER BY 1"
                                    ).fetchall(), float)
    assert len(prior) == len(want) > 0
    np.testing.assert_allclose(prior[["snr_mid", "r2_max_bayes"]].to_numpy(float), want)
    bins = pd.DataFrame({"model": "ridge", "train_size": 1000, "snr_mid": prior["snr_mid"],
                         "r2": 0.1, "r2_max": 0.2})
    assert "ceiling + prior" in F.r2_vs_snr_text(bins, prior=prior)
    assert "ceiling + prior" not in F.r2_vs_snr_text(bins)


def test_ceiling_grid(tmp_path, _isolated_workspace):
    from test_analysis_units import _linear_grid

    flux, error, params, A = _linear_grid()
    path = tmp_path / "grid" / "dataset.h5"
    write_spectra(path, wave=np.linspace(7100, 8850, flux.shape[1]), flux=flux,
                  error=error, params=params, dtype="float64")
    out = _cli("ceiling", "--grid", str(path))
    row = out["Physical ceiling"][0]
    F = A.T @ (A / error[0][:, None] ** 2)
    crlb = np.linalg.inv(F)[1, 1]
    var = float(np.var(np.arange(1.0, 5.01, 0.5)))  # 9 grid nodes → 1.6667, as the research
    assert row["n_failed"] == 0 and row["n"] == len(params)
    assert row["r2_max_median"] == pytest.approx(np.clip(1 - crlb / var, 0, 1), rel=1e-6)
