"""`logg-engine report`: the research summary's sections, every number read from a REAL
store (run folders written by the real `evaluate()`, analyses computed by the real
`moe oracle` / `moe gate` / `deleakage` commands on a small pfsspec dataset). The oracles
are the store's own rows, queried independently of the report code."""

from __future__ import annotations

import json
import math
import re

import duckdb
import numpy as np
import pytest
from typer.testing import CliRunner

from _runfolders import make_run_folder
from fakes import make_toy_analysis_dataset
from engine.analysis.record import AnalysisResult, write_analysis
from engine.analysis.moe.rho import (NA_GAIN_CI, NA_NO_GAIN, RHO_MIN_GAIN, rho, rho_undefined_reason,
                                 rho_with_ci)
from engine.cli import app
from engine.io.dataset import Dataset
from engine.report import research_reference as REF
from engine.store.ingest import ingest_all
from engine.store.ingest_analysis import ingest_analysis
from engine.report.document import build_report
from engine.report.markdown import signed, size, with_ci

SEED_SECTIONS = ("## 📊 1. Scaling Curve", "### 1.1 Best Results per Model",
                 "### 1.2 Key Findings", "## 📊 2. MoE Oracle Results", "### 2.1 By SNR Bins",
                 "### 2.2 By Teff × MH (9-bin)", "### 2.3 MoE with Learned Gate",
                 "## 📊 3. De-leakage Analysis", "## 📊 5. Model Configurations",
                 "## 📊 6. Result Files Location", "## 🎯 Summary", "## 📌 Next Steps")
RUNS = (("ridge", 50_000, 0.80), ("ridge", 100_000, 0.79), ("lgbm", 50_000, 0.72),
        ("lgbm", 100_000, 0.62))


def _cli(*args):
    res = CliRunner().invoke(app, [str(a) for a in args])
    assert res.exit_code == 0, res.output
    return res.output


@pytest.fixture(scope="module")
def toy_ws(tmp_path_factory):
    """Four run folders on dataset `toy` + the real MoE oracle (both bin schemes), a
    logreg gate and the de-leakage study on a 900/200/300-row pfsspec dataset `toy`."""
    root = tmp_path_factory.mktemp("report")
    ws, data = root / "ws", make_toy_analysis_dataset(root / "toy")
    with Dataset(data) as ds:  # runs and analyses on the same build (one fingerprint)
        fp = ds.fingerprint()
    for k, (model, n, scatter) in enumerate(RUNS):
        make_run_folder(ws, f"{model}-{n}", model=model, train_size=n, noise=scatter,
                        dataset="toy", ended=1.7e9 + k, fingerprint=fp,
                        params={"alpha": 5000.0} if model == "ridge" else {"n_estimators": 500})
    ingest_all(ws)
    common = ("--dataset", data, "--size", "900", "--n-boot", "100", "--workspace", ws, "--json")
    _cli("moe", "oracle", "--bins", "teff-mh", *common)
    _cli("moe", "oracle", "--bins", "snr", *common)
    _cli("moe", "gate", "--bins", "teff-mh", "--gate", "logreg", *common)
    _cli("deleakage", "--dataset", data, "--size", "900", "--workspace", ws, "--json")
    return ws


@pytest.fixture(scope="module")
def report(toy_ws):
    return build_report(toy_ws, "toy")


def q(ws, sql, params=()):
    with duckdb.connect(str(ws / "results.duckdb"), read_only=True) as con:
        return con.execute(sql, list(params)).df()


def test_sections_follow_the_research_summary(report):
    pos = [report.index(s) for s in SEED_SECTIONS]
    assert pos == sorted(pos)
    assert "## 🔎 Comparison with the research" in report
    assert not re.search(r"(?i:\bnan\b|\binf\b)|\bNone\b", report)  # no raw missing values
    block: list[int] = []  # every markdown table row has its header's column count
    for ln in report.splitlines() + [""]:
        if ln.startswith("|"):
            block.append(len(re.findall(r"(?<!\\)\|", ln)))
        elif block:
            assert len(set(block)) == 1, block
            block = []


def test_best_table_cells_are_the_stores_numbers(toy_ws, report):
    lb = q(toy_ws, "SELECT model, train_size, r2, r2_lo, r2_hi, mae, run_id FROM leaderboard "
                   "WHERE dataset = 'toy'")
    assert len(lb) == 4
    best = lb.loc[lb["r2"].idxmax()]
    for r in lb.itertuples():
        cell = with_ci(r.r2, r.r2_lo, r.r2_hi)
        cell = f"**{cell}**" if r.run_id == best["run_id"] else cell
        line = next(ln for ln in report.splitlines() if f"`{r.run_id}`" in ln
                    and ln.startswith(f"| **{r.model}** |"))
        assert line.startswith(f"| **{r.model}** | {size(r.train_size)} | {cell} | {r.mae:.3f} |")
    assert "α=5000" in report and "500 trees" in report   # key hyper-parameters as notes
    # key findings computed from the same numbers
    assert (f"**Best overall: {best['model']}** at {size(best['train_size'])} "
            f"(R² {best['r2']:.3f}") in report
    r2s = {m: g.sort_values("train_size")["r2"] for m, g in lb.groupby("model")}
    gain = {m: r.iloc[-1] - r.iloc[0] for m, r in r2s.items()}
    top = max(gain, key=gain.get)
    assert f"**{top} scales best** with data size" in report and signed(gain[top]) in report
    at = lb[lb["train_size"] == 100_000].sort_values("r2", ascending=False)
    a, b = at.iloc[0], at.iloc[1]
    assert f"**{a['model']} > {b['model']}** by {signed(a['r2'] - b['r2'])} R² at 100k" in report
    for m, g in lb.groupby("model"):
        g = g.sort_values("train_size")
        step = g["r2"].iloc[-1] - g["r2"].iloc[-2]
        verdict = ("saturates" if abs(step) < 0.01 else "no gain from more data" if step < 0
                   else "still improving")
        line = next(ln for ln in report.splitlines()
                    if ln.split(". ", 1)[-1].startswith(f"**{m}**:"))
        assert verdict in line, line
    # summary: the model's best R² at its size beside the research's number at that size
    for m, g in lb.groupby("model"):
        r = g.loc[g["r2"].idxmax()]
        ref = REF.SCALING.get((m, int(r["train_size"])))
        ref = f"{ref[0]:.3f}" if ref else "— (size not in the research)"
        assert (f"| **{m}** | {with_ci(r.r2, r.r2_lo, r.r2_hi)} | {size(r.train_size)} | "
                f"{ref} |") in report


def test_moe_oracle_tables_are_the_views(toy_ws, report):
    bins = q(toy_ws, "SELECT * FROM moe_bins WHERE bins = 'teff-mh' ORDER BY bin")
    assert len(bins) == 9
    for r in bins.itertuples():
        o = f"{r.r2_oracle:.3f}"
        o = f"**{o}**" if r.r2_oracle == bins["r2_oracle"].max() else o
        assert (f"| {r.bin} | {r.label} | {r.n_test} | {o} | {r.r2_global:.3f} | "
                f"{r.delta_r2:+.3f} |") in report
    top = bins.loc[bins["delta_r2"].idxmax()]
    assert f"- **{top['label']}** gains most from specialization (Δ R² {top['delta_r2']:+.3f})" \
        in report
    snr = q(toy_ws, "SELECT * FROM moe_bins WHERE bins = 'snr'").set_index("label")
    sec = report[report.index("### 2.1"):report.index("### 2.2")]
    order = [sec.index(f"({lab})") for lab in ("H", "M", "L", "X") if lab in snr.index]
    assert order == sorted(order)  # the research's order: high SNR first
    over = q(toy_ws, "SELECT * FROM moe_overall WHERE bins = 'teff-mh'")
    for r in over.itertuples():
        assert (f"| {r.subset} | {r.n} | {r.coverage:.3f} | "
                f"{with_ci(r.r2_oracle, r.r2_oracle_lo, r.r2_oracle_hi)} | "
                f"{with_ci(r.r2_global, r.r2_global_lo, r.r2_global_hi)} | "
                f"{with_ci(r.delta_r2, r.delta_r2_lo, r.delta_r2_hi, sign=True)} |") in report
    assert "rows outside the bins' box: `clamp`" in report


def test_gate_section_r2_rho_and_confusion(toy_ws, report):
    g = q(toy_ws, "SELECT * FROM moe_gates")
    sec = report[report.index("### 2.3"):report.index("## 📊 3.")]
    for r in g[g["section"] == "bin"].itertuples():
        line = next(ln for ln in sec.splitlines() if ln.startswith(f"| {r.label} | {r.n} |"))
        assert line.split(" | ")[2] == f"{r.r2_gate:.3f}"           # the logreg column
        assert line.split(" | ")[3:5] == ["—", "—"]                 # mlp, linear not run
    assert "gate(s) mlp, linear not run on these bins" in sec
    over = g[g["section"] == "overall"]
    dl = q(toy_ws, "SELECT subset, delta_r2_lo FROM moe_overall WHERE bins = 'teff-mh'") \
        .set_index("subset")["delta_r2_lo"]
    for r in over.itertuples():
        why = rho_undefined_reason(r.r2_oracle - r.r2_global, dl[r.subset])
        want = why or with_ci(r.rho, r.rho_lo, r.rho_hi, digits=2)
        line = next(ln for ln in sec.splitlines() if f"| {r.subset} | {r.n} |" in ln)
        assert line.rstrip(" |").endswith(want), line
    conf = q(toy_ws, "SELECT value FROM analysis_rows WHERE extra->>'section' = 'confusion'")
    rows = [ln for ln in sec.splitlines() if ln[:4] in {f"| {i} " for i in range(9)}]
    counts = [int(c) for ln in rows for c in ln.strip("| ").split(" | ")[1:10]]
    assert sum(counts) == conf["value"].sum() == 300


def test_deleakage_marks_and_comparison_with_the_research(toy_ws, report):
    dl = q(toy_ws, "SELECT * FROM deleakage")
    for r in dl.itertuples():
        line = next(ln for ln in report.splitlines() if ln.startswith(f"| {r.strategy} ("))
        assert line.endswith(f"| {'✅' if r.passed else '❌'} |")
        assert f"| {r.n_features} | {r.logg_r2_test:.3f} |" in line
    cmp_ = report[report.index("## 🔎 Comparison"):]
    assert "the research's values" in cmp_ and "not like-for-like" in cmp_
    assert "0.500 @ 1M" in report  # the research's best Ridge, the summary's reference column
    lb = q(toy_ws, "SELECT model, train_size, r2 FROM leaderboard")
    assert "| ridge (Ridge) | 50k |" not in cmp_  # the research ran no ridge at 50k
    for r in lb[lb.train_size == 100_000].itertuples():
        ref = REF.SCALING[(r.model, r.train_size)][0]
        assert (f"| {r.model} ({REF.MODEL_NAMES[r.model]}) | {size(r.train_size)} | "
                f"{r.r2:.3f} | {ref:.3f} | {r.r2 - ref:+.3f} |") in cmp_
    b5 = q(toy_ws, "SELECT delta_r2, r2_oracle FROM moe_bins WHERE bins = 'teff-mh' AND bin = 5")
    assert (f"| 5 Mid Metal-rich | {b5.delta_r2[0]:+.3f} | +0.103 | {b5.r2_oracle[0]:.3f} | "
            "0.874 |") in cmp_
    passed = dict(zip(dl.strategy, dl.passed))
    for s, ref in REF.DELEAKAGE.items():
        ours = "✅" if passed[s] else "❌"
        agree = "yes" if passed[s] == ref[3] else "**no**"
        assert f"| {s} | {ours} | {'✅' if ref[3] else '❌'} | {agree} |" in cmp_
    assert "logg-engine moe gate --bins teff-mh --gate mlp --dataset toy" in report  # next step


def test_no_compare_and_cli_options(toy_ws, tmp_path):
    out = tmp_path / "r.md"
    _cli("report", "--dataset", "toy", "--no-compare", "--out", out, "--workspace", toy_ws)
    text = out.read_text()
    assert "🔎 Comparison" not in text and "Research (reference)" not in text
    assert "@ 1M" not in text and "## 📊 2. MoE Oracle Results" in text  # no research column
    res = CliRunner().invoke(app, ["report", "--dataset", "nope", "--workspace", str(toy_ws)])
    assert res.exit_code == 4 and "toy" in res.output  # names the datasets that exist


def test_store_without_analyses_says_which_command_fills_each_section(_isolated_workspace):
    ws = _isolated_workspace
    ridge = make_run_folder(ws, "ridge-10000", model="ridge", train_size=10_000,
                            params={"alpha": 1e5})
    m = json.loads((ridge / "metrics.json").read_text())
    m["extra"]["model"] = {"alpha": 3162.5}  # the α the run chose on val (describe())
    (ridge / "metrics.json").write_text(json.dumps(m))
    vit = make_run_folder(ws, "vit-10000", model="vit", train_size=10_000, noise=0.3,
                          params={"patch_size": 16, "hidden": 256, "layers": 6})
    m = json.loads((vit / "metrics.json").read_text())
    m["extra"]["model"] = {"n_params": 4321}  # what the ViT adapter's describe() records
    (vit / "metrics.json").write_text(json.dumps(m))
    ingest_all(ws)
    text = _cli("report")
    assert "| **vit** | 10k |" in text and "p=16, h=256, L=6" in text
    assert "α=3162.5" in text and "α=100000" not in text  # the chosen α, not the preset's
    cfg = text[text.index("### vit (10k) (Best)"):text.index("## 📊 6.")]
    assert "n_params: 4321" in cfg and "  patch_size: 16" in cfg
    for cmd in ("logg-engine moe oracle --bins snr --dataset default",
                "logg-engine moe oracle --bins teff-mh --dataset default",
                "logg-engine moe gate --bins teff-mh --gate logreg --dataset default",
                "logg-engine deleakage --dataset default",
                "logg-engine ceiling --dataset default"):
        assert f"run `{cmd}`" in text, cmd
    assert "**ridge**: one size only (10k" in text
    assert "no run at noise_level 1.0 at a size the research reports" in text


def _gate_analysis(ws, dataset, name, r2_oracle, r2_global, rho_value, ci=(None, None)):
    """A moe_gate analysis through the engine's own record → ingest path."""
    res = AnalysisResult("moe_gate", {"dataset": dataset, "bins": "teff-mh", "gate": name,
                                      "routing": "soft", "size": 1000, "noise_level": 1.0},
                         [{"section": "overall", "subset": "all", "n": 100, "r2_gate": 0.5,
                           "r2_oracle": r2_oracle, "r2_global": r2_global, "rho": rho_value,
                           "rho_ci": ci, "accuracy": 0.6, "fallback_rate": 0.0},
                          {"section": "bin", "bin": 0, "label": "Cool Metal-poor",
                           "n_test": 100, "r2_gate": 0.5, "r2_oracle": r2_oracle,
                           "r2_global": r2_global}])
    ingest_analysis(ws, write_analysis(ws, res))


def test_rho_na_rule_in_the_report(_isolated_workspace):
    ws = _isolated_workspace
    make_run_folder(ws, "ridge-10000", model="ridge", train_size=10_000, dataset="other")
    ingest_all(ws)
    # an old record with a finite ρ although the oracle gains nothing: hidden
    _gate_analysis(ws, "other", "logreg", 0.40, 0.40, 7.3, (-50.0, 80.0))
    # positive gain but ρ recorded as NULL (its gain CI included 0)
    _gate_analysis(ws, "other", "mlp", 0.45, 0.40, float("nan"))
    _gate_analysis(ws, "other", "linear", 0.60, 0.40, 0.5, (0.4, 0.6))
    text = build_report(ws, "other")
    cells = {ln.split(" | ")[0].strip("| "): ln.rstrip(" |").rsplit(" | ", 1)[-1]
             for ln in text.splitlines() if ln.startswith(("| logreg |", "| mlp |", "| linear |"))}
    assert cells == {"logreg": NA_NO_GAIN, "mlp": NA_GAIN_CI, "linear": "0.50 [0.40, 0.60]"}
    assert "7.30" not in text


def test_report_for_a_dataset_with_analyses_but_no_runs(_isolated_workspace):
    ws = _isolated_workspace
    make_run_folder(ws, "ridge-10000", model="ridge", train_size=10_000)
    ingest_all(ws)
    _gate_analysis(ws, "gates-only", "linear", 0.60, 0.40, 0.5, (0.4, 0.6))
    text = _cli("report", "--dataset", "gates-only")
    assert "no finished runs on `gates-only` yet: run `logg-engine scaling --dataset gates-only" \
        in text
    assert "| Cool Metal-poor | 100 | — | — | 0.500 | 0.600 | 0.400 |" in text


def test_rho_is_undefined_without_an_oracle_gain():
    assert math.isnan(rho(0.5, 0.4 + RHO_MIN_GAIN / 2, 0.4))
    assert math.isnan(rho(0.5, 0.3, 0.4))                       # oracle worse than global
    assert rho(0.5, 0.6, 0.4) == pytest.approx(0.5)
    assert rho_undefined_reason(-0.1) == NA_NO_GAIN and rho_undefined_reason(None) == NA_NO_GAIN
    assert rho_undefined_reason(0.05, -0.01) == NA_GAIN_CI
    assert rho_undefined_reason(0.05, 0.01) is None
    rng = np.random.default_rng(0)
    y = rng.uniform(1, 5, 300)
    glob = y + rng.normal(0, 0.8, 300)
    tiny = glob + rng.normal(0, 0.05, 300)  # an "oracle" that is the global model + noise
    gate = 0.5 * (tiny + glob)
    r, lo, hi = rho_with_ci(y, gate, tiny, glob, n_boot=200)
    assert all(math.isnan(v) for v in (r, lo, hi))
    good = y + rng.normal(0, 0.3, 300)
    r, lo, hi = rho_with_ci(y, 0.5 * (good + glob), good, glob, n_boot=200)
    assert lo <= r <= hi and 0 < r < 1


def test_research_reference_is_the_seed_table():
    """The hand-typed reference values are the seed summary's (spot checks per table)."""
    assert REF.SCALING[("vit", 1_000_000)] == (0.711, 0.372)
    assert REF.SCALING[("lgbm", 500_000)] == (0.574, 0.579)
    assert REF.MOE_SNR["M"] == (292, 0.710, 0.614, 0.096)
    assert REF.MOE_TEFF_MH[0] == (0.543, 0.351, 0.193)
    assert [k for k, v in REF.DELEAKAGE.items() if v[3]] == ["S2_template_scale",
                                                             "S3_quantiles_11", "S4_snr_only"]
