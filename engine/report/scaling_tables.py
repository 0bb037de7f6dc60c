"""Report §1, the scaling curve: best result per model × training size and the key
findings computed from those numbers (who scales best, the gap at the largest common
size, which models saturate), plus R² per Teff × [M/H] bin per model."""

from __future__ import annotations

import pandas as pd

from engine.report.markdown import finite, hint, num, signed, size, table, with_ci

SATURATION_DR2 = 0.01  # R² gain between the two largest sizes below which a model "saturates"
# hyper-parameters that name a model's configuration in the research's tables ("Ridge (α=5000)")
KEY_PARAMS = {"ridge": (("alpha", "α"),),
              "lgbm": (("n_estimators", "trees"), ("num_leaves", "leaves"),
                       ("learning_rate", "lr")),
              "vit": (("patch_size", "p"), ("hidden", "h"), ("layers", "L"))}
CHOSEN = {"alpha": "model.alpha"}  # a run_facts value that overrides the preset's (α chosen on val)


def scaling_section(d) -> list[str]:
    out = ["## 📊 1. Scaling Curve", ""]
    if d.points.empty:
        return out + hint(f"no finished runs on `{d.dataset}` yet",
                          f"logg-engine scaling --dataset {d.dataset} --models ridge,lgbm "
                          "--sizes 10k,50k,100k")
    multi = d.points["noise_level"].nunique() > 1
    levels = ", ".join(f"{v:g}" for v in sorted(d.points["noise_level"].unique()))
    out += [f"Test split {', '.join(map(str, d.info['test_split'].dropna().unique()))}; "
            f"noise level(s) {levels}."
            " One row per model × training size: the finished run with the best test R².", "",
            "### 1.1 Best Results per Model", ""]
    out += best_table(d, multi) + [""]
    out += ["### 1.2 Key Findings", ""]
    for noise, group in d.points.groupby("noise_level", sort=True):
        if multi:
            out += [f"noise_level = {noise:g}:", ""]
        out += key_findings(group) + [""]
    out += ["### 1.3 R² per Teff × [M/H] bin", ""]
    out += bin_table(d, "teff_mh", ceiling=False)
    return out


def best_table(d, multi: bool) -> list[str]:
    pts = d.points
    main = pts[pts["noise_level"] == d.noise]
    best_id = main.loc[main["r2"].idxmax(), "run_id"] if main["r2"].notna().any() else None
    order = pts.groupby("model")["r2"].max().sort_values(ascending=False).index
    rows = []
    for model in order:
        for r in pts[pts["model"] == model].sort_values(
                ["noise_level", "train_size"], ascending=[True, False]).itertuples():
            notes = []
            if r.run_id == best_id:
                notes.append("**best overall**")
            label = model_label(d, r.model, r.run_id)
            if label != r.model:
                notes.append(label[len(r.model):].strip(" ()"))
            if isinstance(r.preset, str) and r.preset and r.preset != "default":
                notes.append(f"preset {r.preset}")
            if r.n_runs > 1:
                notes.append(f"latest of {r.n_runs} runs")
            r2 = with_ci(r.r2, r.r2_lo, r.r2_hi)
            rows.append([f"**{r.model}**", size(r.train_size)]
                        + ([f"{r.noise_level:g}"] if multi else [])
                        + [f"**{r2}**" if r.run_id == best_id else r2, num(r.mae),
                           "; ".join(notes), f"`{r.run_id}`"])
    head = ["Model", "Data Size", *(["Noise"] if multi else []), "Test R² [95% CI]",
            "Test MAE (dex)", "Notes", "Run"]
    return table(head, rows, "lr" + ("r" if multi else "") + "rrll")


def model_label(d, model: str, run_id: str) -> str:
    """"ridge (α=5000)": the model with its key hyper-parameters from run_params, or
    the value the run chose (run_facts, e.g. Ridge's α picked on the validation split)."""
    p = d.params[d.params["run_id"] == run_id].set_index("key") if len(d.params) else None
    parts = []
    facts = d.facts.get(run_id, {})
    for key, short in KEY_PARAMS.get(model, ()):
        if finite(facts.get(CHOSEN.get(key, ""))):
            v = facts[CHOSEN[key]]
        elif p is None or key not in p.index:
            continue
        else:
            v = p.loc[key, "value"]  # decoded by engine.store.reader.param_value
        if finite(v):
            v = f"{float(v):g}"
        parts.append(f"{short}={v}" if short in ("α", "lr", "p", "h", "L") else f"{v} {short}")
    return f"{model} ({', '.join(parts)})" if parts else model


def key_findings(group: pd.DataFrame) -> list[str]:
    """Findings computed from the scaling rows of one noise level: the best model, who
    scales best, the gap at the largest size every model ran, and each model's trend
    with a saturation verdict (gain over its last size step < SATURATION_DR2)."""
    g = group.dropna(subset=["r2"])
    if g.empty:
        return ["- No run has a finite R² yet."]
    lines: list[str] = []

    def add(text: str) -> None:
        lines.append(f"{len(lines) + 1}. {text}")

    best = g.loc[g["r2"].idxmax()]
    add(f"**Best overall: {best['model']}** at {size(best['train_size'])} "
        f"(R² {num(best['r2'])}, MAE {num(best['mae'])} dex).")
    trends = {m: rows.sort_values("train_size") for m, rows in g.groupby("model")}
    grown = {m: r for m, r in trends.items() if len(r) >= 2}
    if len(grown) >= 2:
        gains = {m: r.iloc[-1]["r2"] - r.iloc[0]["r2"] for m, r in grown.items()}
        m = max(gains, key=gains.get)
        r = grown[m]
        add(f"**{m} scales best** with data size (R² {num(r.iloc[0]['r2'])} → "
            f"{num(r.iloc[-1]['r2'])} from {size(r.iloc[0]['train_size'])} to "
            f"{size(r.iloc[-1]['train_size'])}, {signed(gains[m])}).")
    if len(trends) >= 2:
        common = set.intersection(*(set(r["train_size"]) for r in trends.values()))
        if common:
            n = max(common)
            at = g[g["train_size"] == n].sort_values("r2", ascending=False)
            a, b = at.iloc[0], at.iloc[1]
            add(f"**{a['model']} > {b['model']}** by {signed(a['r2'] - b['r2'])} R² at "
                f"{size(n)} (the largest size every model ran: "
                + ", ".join(f"{r.model} {num(r.r2)}" for r in at.itertuples()) + ").")
        else:
            largest = g.sort_values("train_size").groupby("model").tail(1) \
                .sort_values("r2", ascending=False)
            a, b = largest.iloc[0], largest.iloc[1]
            add(f"At their largest sizes (no size common to every model), {a['model']} "
                f"({size(a['train_size'])}) beats {b['model']} ({size(b['train_size'])}) by "
                f"{signed(a['r2'] - b['r2'])} R².")
    for model, rows in trends.items():
        if len(rows) < 2:
            add(f"**{model}**: one size only ({size(rows.iloc[0]['train_size'])}, R² "
                f"{num(rows.iloc[0]['r2'])}); no trend yet.")
            continue
        first, prev, last = rows.iloc[0], rows.iloc[-2], rows.iloc[-1]
        trend = (f"R² {num(first['r2'])} → {num(last['r2'])} from "
                 f"{size(first['train_size'])} to {size(last['train_size'])}")
        gain = last["r2"] - prev["r2"]
        step = f"{size(prev['train_size'])} to {size(last['train_size'])}"
        if gain < -SATURATION_DR2:
            verdict = f"**no gain from more data**: R² falls {signed(gain)} from {step}"
        elif gain < SATURATION_DR2:
            verdict = (f"**saturates** around R² {num(last['r2'], 2)} "
                       f"(gain {signed(gain)} from {step})")
        else:
            verdict = f"still improving ({signed(gain)} over the last size step)"
        add(f"**{model}**: {trend}; {verdict}.")
    return lines


def largest_runs(d) -> pd.DataFrame:
    """Each model's largest-size point at the report's noise level."""
    pts = d.points[d.points["noise_level"] == d.noise]
    return pts.sort_values("train_size").groupby("model").tail(1).sort_values("model")


def bin_table(d, scheme: str, *, ceiling: bool) -> list[str]:
    """One row per bin, one R² column per model (its largest-size run); with `ceiling`
    also R²_max (per-spectrum CRLBs of the test rows) and each model's η = mean(CRLB)/MSE."""
    runs = largest_runs(d)
    b = d.bins[(d.bins["scheme"] == scheme) & d.bins["run_id"].isin(runs["run_id"])] \
        if len(d.bins) else d.bins
    if b.empty:
        return ["_no per-bin metrics stored for these runs (their metrics.json has no "
                f"`{scheme}` bins): rerun them with the current engine._", ""]
    models = list(runs.itertuples())
    has_max = ceiling and b["r2_max"].notna().any()
    head = ["Bin", "n"] + (["R²_max"] if has_max else [])
    for r in models:
        head.append(f"{r.model} ({size(r.train_size)}) R²")
        if has_max:
            head.append(f"{r.model} η")
    rows = []
    for (_bin, label), rr in b.groupby(["bin", "label"], sort=True):
        by_run = rr.set_index("run_id")
        row = [str(label), str(int(rr["n"].max()))]
        if has_max:  # the ceiling depends on the test rows only: the same for every run
            cmax = rr["r2_max"].dropna()
            row.append(num(cmax.iloc[0]) if len(cmax) else "—")
        for r in models:
            row.append(num(by_run["r2"].get(r.run_id)))
            if has_max:
                row.append(num(by_run["eta"].get(r.run_id), 2))
        rows.append(row)
    return table(head, rows, "l" + "r" * (len(head) - 1)) + [""]
