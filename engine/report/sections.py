"""Report §3 de-leakage, §4 physical ceiling, §5 model configurations, §6 result files,
and an appendix for analyses of kinds without a dedicated section."""

from __future__ import annotations

import json

import pandas as pd

from engine.paths import runs_dir, store_path
from engine.report.markdown import (finite, frame_markdown, hint, num, size, table)
from engine.report.scaling_tables import bin_table

PASS_RULE = "passed ⇔ log g R² < 0.05 and SNR R² > 0.5 (test split, Ridge α = 1)"
CONFIG_KEYS_MAX = 16  # hyper-parameters shown per model; the rest: `logg-engine runs show`
FACT_LINES = (("model.best_epoch", "best_epoch"), ("model.best_iteration", "best_iteration"),
              ("train_seconds", "train_time_s"), ("predict_seconds", "predict_time_s"))


def deleakage_section(d) -> list[str]:
    out = ["## 📊 3. De-leakage Analysis", ""]
    aid = d.pick("deleakage")
    if aid is None:
        return out + hint(f"no de-leakage study on `{d.dataset}` yet",
                          f"logg-engine deleakage --dataset {d.dataset}")
    df = d.view("deleakage", aid).sort_values("strategy")
    rows, passed, failed = [], [], []
    for r in df.itertuples():
        name = f"{r.strategy} ({r.definition})" if isinstance(r.definition, str) \
            and r.definition else str(r.strategy)
        ok = as_bool(r.passed)
        mark = "—" if ok is None else ("✅" if ok else "❌")
        snr = f"**{num(r.snr_r2_test)}**" if finite(r.logg_r2_test) and r.logg_r2_test >= 0.05 \
            else num(r.snr_r2_test)
        rows.append([name, str(int(r.n_features)) if finite(r.n_features) else "—",
                     num(r.logg_r2_test), snr, mark])
        (passed if mark == "✅" else failed if mark == "❌" else []).append(r)
    p = d.params_of(aid)
    out += table(["Feature Strategy", "n_features", "log_g R²", "SNR R²", "Passed"], rows,
                 "lrrrl") + [""]
    out += [f"Rule: {PASS_RULE}. Training rows: {size(p.get('size'))}; analysis `{aid}`.", ""]
    key = []
    leaks = [r for r in failed if finite(r.logg_r2_test) and r.logg_r2_test >= 0.05]
    if leaks:
        worst = max(leaks, key=lambda r: r.logg_r2_test)
        key.append(f"{len(leaks)} representation(s) leak log g (worst: {worst.strategy}, "
                   f"log g R² {num(worst.logg_r2_test)})")
    if passed:
        best = max(passed, key=lambda r: r.snr_r2_test if finite(r.snr_r2_test) else -1)
        key.append(f"{len(passed)} pass; the best SNR R² among them is {best.strategy} "
                   f"({num(best.snr_r2_test)} with {int(best.n_features)} feature(s))")
    if key:
        out += ["**Key**: " + "; ".join(key) + ".", ""]
    return out


def as_bool(v) -> bool | None:
    """True/False from a view's boolean cell; None for NULL/NA/NaN."""
    if v is None or v is pd.NA or (isinstance(v, float) and v != v):
        return None
    try:
        return bool(v)
    except (TypeError, ValueError):
        return None


def ceiling_section(d) -> list[str]:
    out = ["## 📊 4. Physical Ceiling (Fisher / CRLB)", "",
           "### 4.1 R² per SNR bin beside the ceiling", ""]
    if d.points.empty:
        out += hint("no runs to compare with the ceiling",
                    f"logg-engine scaling --dataset {d.dataset}")
    else:
        out += ["Each model's largest run; R²_max = 1 − mean(min(CRLB, Var_bin))/Var_bin of "
                "the bin's test rows, η = mean(CRLB)/MSE (1 = at the Cramér–Rao bound).", ""]
        out += bin_table(d, "snr", ceiling=True)
        if len(d.bins) and not d.bins["r2_max"].notna().any():
            out += ["_the test split has no per-spectrum CRLBs, so no R²_max: build the "
                    "dataset with CRLBs (`logg-engine data generate`, without --no-crlb)._", ""]
    out += ["### 4.2 Ceiling of the test split", ""]
    aid = d.pick("ceiling")
    if aid is None:
        return out + hint(f"no ceiling analysis on `{d.dataset}` yet",
                          f"logg-engine ceiling --dataset {d.dataset}")
    c = d.view("ceiling", aid)
    c = c[c["section"] == "dataset"].sort_values(["scheme", "bin"])
    rows = [[str(r.scheme), str(r.label), str(int(r.n)) if finite(r.n) else "—",
             num(r.r2_max_pop), num(r.r2_max_median), num(r.r2_max_bayes), num(r.sigma_p10),
             num(r.sigma_p50), num(r.sigma_p90)] for r in c.itertuples()]
    out += table(["Scheme", "Bin", "n", "R²_max (pop)", "R²_max (median)", "R²_max (Bayes)",
                  "σ p10", "σ p50", "σ p90"], rows, "llrrrrrrr") + [""]
    return out + [f"σ = √CRLB of log g (dex); analysis `{aid}`.", ""]


def configurations_section(d) -> list[str]:
    out = ["## 📊 5. Model Configurations", ""]
    pts = d.points[d.points["noise_level"] == d.noise]
    if pts.empty:
        return out + hint("no runs yet", f"logg-engine run ridge --dataset {d.dataset}")
    best = pts.dropna(subset=["r2"]).sort_values("r2").groupby("model").tail(1) \
        .sort_values("r2", ascending=False)
    top = best.iloc[0]["run_id"] if len(best) else None
    facts = d.facts
    for r in best.itertuples():
        run = d.runs[d.runs["run_id"] == r.run_id].iloc[0] if len(d.runs) else {}
        out += [f"### {r.model} ({size(r.train_size)}){' (Best)' if r.run_id == top else ''}",
                "", "```yaml", f"run: {r.run_id}", f"preset: {r.preset or 'default'}",
                f"train_size: {int(r.train_size)}", f"test_r2: {num(r.r2, 4)}"]
        out += _params_yaml(d, r.run_id)
        f = facts.get(r.run_id, {})
        n_params = _n_params(d, r.run_id, f)
        if n_params is not None:
            out.append(f"n_params: {n_params}")
        for key, label in FACT_LINES:
            if finite(f.get(key)):
                v = f[key]
                out.append(f"{label}: {v:.1f}" if key.endswith("seconds") else
                           f"{label}: {int(v)}")
        if finite(run.get("duration_s")):
            out.append(f"run_time_s: {float(run['duration_s']):.1f}")
        for k in ("device", "peak_rss_mb"):
            v = run.get(k)
            if v is not None and not (isinstance(v, float) and not finite(v)):
                out.append(f"{k}: {num(v, 0) if k == 'peak_rss_mb' else v}")
        out += ["```", f"Command that ran it: `{run.get('command') or '—'}`", ""]
    return out


def _params_yaml(d, run_id: str) -> list[str]:
    p = d.params[d.params["run_id"] == run_id].sort_values("key") if len(d.params) else d.params
    if p.empty:
        return ["params: {}"]
    lines = ["params:"]
    for r in p.head(CONFIG_KEYS_MAX).itertuples():
        lines.append(f"  {r.key}: {_yaml_value(r.value)}")
    if len(p) > CONFIG_KEYS_MAX:
        lines.append(f"  # … {len(p) - CONFIG_KEYS_MAX} more: logg-engine runs show {run_id}")
    return lines


def _yaml_value(v) -> str:
    """A decoded parameter (engine.store.reader.param_value) as a YAML scalar."""
    if v is None:
        return "null"
    if isinstance(v, bool):
        return str(v).lower()
    if isinstance(v, float):
        return f"{v:g}"
    if isinstance(v, (list, dict)):
        return _compact(json.dumps(v))
    return str(v)


def _compact(text: str) -> str:
    """A JSON list parameter on one short line: numbers as %g, long lists elided."""
    try:
        v = json.loads(text)
    except (TypeError, ValueError):
        return text
    if not isinstance(v, list):
        return text
    items = [f"{x:g}" if isinstance(x, float) else json.dumps(x) for x in v]
    if len(items) > 6:
        return f"[{', '.join(items[:3])}, …, {items[-1]}]  # {len(items)} values"
    return f"[{', '.join(items)}]"


def _n_params(d, run_id: str, facts: dict[str, float]) -> int | None:
    """Trainable parameters of a neural model: the run's `model.n_params` fact (what the
    adapter's describe() recorded), else a run_params `n_params` hyper-parameter."""
    if finite(facts.get("model.n_params")):
        return int(facts["model.n_params"])
    p = d.params[(d.params["run_id"] == run_id) & (d.params["key"] == "n_params")] \
        if len(d.params) else d.params
    if len(p) and finite(p.iloc[0]["value"]):
        return int(p.iloc[0]["value"])
    return None


EXPORT_FILES = (  # what `logg-engine export research DIR` writes (engine.analysis.export)
    ("VIT Scaling", "results/vit_scaling_summary.json", "leaderboard (vit)"),
    ("Ridge scaling", "results/scaling_ml_ceiling/ridge_results.csv", "leaderboard (ridge)"),
    ("LightGBM scaling", "results/scaling_ml_ceiling/lightgbm_results.csv",
     "leaderboard (lgbm)"),
    ("MoE SNR oracle", "results/logg_snr_oracle_moe/per_bin_results.csv",
     "moe_bins (bins = snr)"),
    ("MoE 9-bin oracle", "results/scaling_oracle_moe/per_bin_results.csv",
     "moe_bins (bins = teff-mh)"),
    ("MoE 9-bin oracle overall", "results/scaling_oracle_moe/results.csv",
     "moe_overall (bins = teff-mh)"),
    ("MoE regression gate", "results/moe/regression_gate/per_bin_results.csv",
     "moe_gates (bins = teff-mh)"),
    ("De-leakage", "results/logg_snr_moe/deleakage_results.csv", "deleakage"),
)


def files_section(d) -> list[str]:
    ws = d.workspace
    have = {"leaderboard (vit)": (d.points["model"] == "vit").any(),
            "leaderboard (ridge)": (d.points["model"] == "ridge").any(),
            "leaderboard (lgbm)": (d.points["model"] == "lgbm").any(),
            "moe_bins (bins = snr)": d.pick("moe_oracle", bins="snr") is not None,
            "moe_bins (bins = teff-mh)": d.pick("moe_oracle", bins="teff-mh") is not None,
            "moe_overall (bins = teff-mh)": d.pick("moe_oracle", bins="teff-mh") is not None,
            "moe_gates (bins = teff-mh)": d.pick("moe_gate", bins="teff-mh") is not None,
            "deleakage": d.pick("deleakage") is not None}
    out = ["## 📊 6. Result Files Location", "",
           "| Result Type | Path |", "|---|---|",
           f"| Results store (every number above) | `{store_path(ws)}` |",
           f"| Run folders (run.json, events.jsonl, metrics.json, predictions.parquet) | "
           f"`{runs_dir(ws)}/<run_id>/` |",
           f"| Analysis folders (analysis.json, rows.parquet) | `{ws / 'analyses'}/<id>/` |",
           "", "`logg-engine export research DIR` writes the research's result files (its "
           "§5 paths) from the store (the latest analysis of each kind, all datasets):", ""]
    rows = [[what, f"`DIR/{rel}`", f"`{src}`", "yes" if have[src] else "no"]
            for what, rel, src in EXPORT_FILES]
    return out + table(["Result Type", "Path", "Store view", f"Data for `{d.dataset}`"],
                       rows) + [""]


def other_analyses_section(d) -> list[str]:
    """Analyses of kinds this report has no section for: key × metric tables."""
    out = []
    for aid, df in d.other.items():
        if df.empty:
            continue
        kind = d.analyses.loc[d.analyses["analysis_id"] == aid, "kind"].iloc[0]
        wide = df.pivot_table(index="key", columns="metric", values="value",
                              aggfunc="first", sort=False).reset_index()
        out += ["", f"## {kind.replace('_', ' ').capitalize()} (`{aid}`)", "",
                *frame_markdown(wide)]
    return out
