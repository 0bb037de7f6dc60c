"""The markdown results summary (`logg-engine report`), built from the store only.

Why: the research's reports carried hand-copied and stale numbers (ORIGINAL_SYSTEM.md §9.2
items 1, 5). Every number here is read from the store at generation time; sections for
MoE, de-leakage and the Fisher ceiling appear only when their tables have rows."""

from __future__ import annotations

import math
from datetime import datetime, timezone
from pathlib import Path

import pandas as pd

from engine.errors import StoreError
from engine.store.connect import NO_RESULTS_HINT, connect_ro

SATURATION_DR2 = 0.01  # R² gain between the two largest sizes below which a model "saturates"


def build_report(workspace: Path, dataset: str | None = None) -> str:
    """Markdown summary for one dataset (default: the one with the most finished runs)."""
    with connect_ro(workspace) as con:
        scaling = con.execute("SELECT * FROM scaling_curve").df()
        if scaling.empty:
            raise StoreError("no finished runs in the store yet", hint=NO_RESULTS_HINT)
        dataset = dataset or scaling["dataset"].value_counts().index[0]
        scaling = scaling[scaling["dataset"] == dataset]
        if scaling.empty:
            known = ", ".join(sorted(con.execute(
                "SELECT DISTINCT dataset FROM scaling_curve").df()["dataset"].astype(str)))
            raise StoreError(f"no finished runs on dataset '{dataset}'",
                             hint=f"datasets with results: {known}")
        ids = list(scaling["run_id"])
        bins = con.execute("SELECT * FROM bin_table WHERE run_id IN (SELECT unnest(?))",
                           [ids]).df()
        info = con.execute("SELECT DISTINCT test_split, dataset_fingerprint FROM runs "
                           "WHERE run_id IN (SELECT unnest(?))", [ids]).df()
        moe = con.execute("SELECT m.*, r.model FROM moe_experts m JOIN runs r USING (run_id) "
                          "WHERE r.dataset_name = ?", [dataset]).df()
        analyses = _analysis_frames(con, dataset)
    now = datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    out = [f"# log g results summary — dataset `{dataset}`", "",
           f"> Generated {now} from the results store (every number below is read from it).",
           f"> Test split(s): {', '.join(map(str, info['test_split'].unique()))}; "
           f"dataset fingerprint(s): {', '.join(map(str, info['dataset_fingerprint'].unique()))}.",
           ""]
    for noise, group in scaling.groupby("noise_level", sort=True):
        out += _scaling_section(group, noise)
        out += _bin_section(group, bins, "snr", "2. R² per SNR bin (fixed bins on `snr`)")
        out += _bin_section(group, bins, "teff_mh", "3. R² per Teff × [M/H] bin")
    if not moe.empty:
        out += _moe_section(moe)
    for title, aid, frame in analyses:
        out += [f"## {title} (`{aid}`)", "", *frame_markdown(frame), ""]
    return "\n".join(out).rstrip() + "\n"


# kind → [(section title, view)]: the later issues' views (migrations/002_analysis_views.sql)
ANALYSIS_VIEWS = {
    "moe_oracle": [("MoE oracle (mask-aligned overall)", "moe_overall"),
                   ("MoE oracle per bin", "moe_bins")],
    "moe_gate": [("MoE with a learned gate", "moe_gates")],
    "deleakage": [("Error-vector de-leakage", "deleakage")],
    # per-run rows are already in §2/§3 beside R²_max: only the test split's ceiling here
    "ceiling": [("Fisher / CRLB ceiling of the test split", "ceiling", "section = 'dataset'")],
}


def _analysis_frames(con, dataset: str) -> list[tuple[str, str, pd.DataFrame]]:
    """(title, analysis_id, rows) for the latest analysis of each kind that has rows,
    preferring analyses of `dataset`; kinds without a view are shown as key × metric."""
    latest = con.execute("""
        SELECT kind, arg_max(analysis_id, (coalesce(params->>'dataset' = ?, false), created))
        FROM analyses WHERE analysis_id IN (SELECT analysis_id FROM analysis_rows)
        GROUP BY kind ORDER BY kind""", [dataset]).fetchall()
    views = {r[0] for r in con.execute("SELECT view_name FROM duckdb_views()").fetchall()}
    out = []
    for kind, aid in latest:
        for title, view, *where in ANALYSIS_VIEWS.get(kind, []):
            if view in views:
                cond = "".join(f" AND {w}" for w in where)
                df = con.execute(f"SELECT * FROM {view} WHERE analysis_id = ?{cond}",
                                 [aid]).df().dropna(axis=1, how="all")
                if not df.empty:
                    out.append((title, aid, _drop_constant(df)))
        if kind not in ANALYSIS_VIEWS:
            df = con.execute("SELECT key, metric, value FROM analysis_rows WHERE "
                             "analysis_id = ? ORDER BY row_idx", [aid]).df()
            wide = df.pivot_table(index="key", columns="metric", values="value",
                                  aggfunc="first", sort=False).reset_index()
            out.append((kind.replace("_", " ").capitalize(), aid, wide))
    return out


def _drop_constant(df: pd.DataFrame) -> pd.DataFrame:
    """Drop the analysis id and columns that hold one value for every row (parameters)."""
    keep = [c for c in df.columns if c != "analysis_id"
            and (len(df) == 1 or df[c].astype(str).nunique() > 1 or c in ("n", "label"))]
    return df[keep]


def frame_markdown(df: pd.DataFrame) -> list[str]:
    """A DataFrame as a markdown table (floats to 4 decimals, missing as —)."""
    lines = ["| " + " | ".join(map(str, df.columns)) + " |",
             "|" + "---|" * len(df.columns)]
    counts = {c for c in df.columns if df[c].dtype.kind == "f"
              and df[c].dropna().map(float.is_integer).all() and df[c].notna().any()}
    for row in df.itertuples(index=False):
        cells = [str(int(v)) if c in counts and _finite(v) else _cell(v)
                 for c, v in zip(df.columns, row)]
        lines.append("| " + " | ".join(cells) + " |")
    return lines


def _cell(v) -> str:
    if isinstance(v, float):
        return _n(v, 4)
    if v is None or (isinstance(v, float) and math.isnan(v)) or str(v) in ("nan", "<NA>"):
        return "—"
    return str(v)


def _scaling_section(group: pd.DataFrame, noise: float) -> list[str]:
    lines = [f"## 1. Scaling curve (noise_level = {noise:g})", "",
             "### 1.1 Results per model and training size", "",
             "| Model | Train size | Test R² [95% CI] | Test MAE (dex) | Run |",
             "|-------|-----------:|------------------|---------------:|-----|"]
    ordered = group.sort_values(["model", "train_size"], ascending=[True, False])
    for r in ordered.itertuples():
        lines.append(f"| {r.model} | {_size(r.train_size)} | {_n(r.r2, 3)} "
                     f"[{_n(r.r2_lo, 3)}, {_n(r.r2_hi, 3)}] | {_n(r.mae, 3)} | `{r.run_id}` |")
    return lines + ["", "### 1.2 Key findings", ""] + key_findings(group) + [""]


def key_findings(group: pd.DataFrame) -> list[str]:
    """Findings computed from the scaling rows: best model, per-model trend, saturation."""
    g = group.dropna(subset=["r2"])
    if g.empty:
        return ["- No run has a finite R² yet."]
    best = g.loc[g["r2"].idxmax()]
    lines = [f"1. **Best overall: {best['model']}** at {_size(best['train_size'])} "
             f"(R² {_n(best['r2'], 3)}, MAE {_n(best['mae'], 3)} dex)."]
    largest = g.sort_values("train_size").groupby("model").tail(1).sort_values("r2",
                                                                            ascending=False)
    if len(largest) >= 2:
        a, b = largest.iloc[0], largest.iloc[1]
        lines.append(f"{len(lines) + 1}. At their largest sizes, {a['model']} "
                     f"({_size(a['train_size'])}) beats {b['model']} "
                     f"({_size(b['train_size'])}) by {a['r2'] - b['r2']:+.3f} R².")
    for model, rows in g.sort_values("train_size").groupby("model"):
        if len(rows) < 2:
            continue
        first, prev, last = rows.iloc[0], rows.iloc[-2], rows.iloc[-1]
        trend = (f"R² {_n(first['r2'], 3)} → {_n(last['r2'], 3)} from "
                 f"{_size(first['train_size'])} to {_size(last['train_size'])}")
        gain = last["r2"] - prev["r2"]
        if gain < -SATURATION_DR2:
            verdict = (f"**no gain from more data**: R² falls {gain:+.3f} from "
                       f"{_size(prev['train_size'])} to {_size(last['train_size'])}")
        elif gain < SATURATION_DR2:
            verdict = (f"**saturates** around R² {_n(last['r2'], 2)} (gain {gain:+.3f} from "
                       f"{_size(prev['train_size'])} to {_size(last['train_size'])})")
        else:
            verdict = f"still improving ({gain:+.3f} over the last size step)"
        lines.append(f"{len(lines) + 1}. **{model}**: {trend}; {verdict}.")
    return lines


def _bin_section(group: pd.DataFrame, bins: pd.DataFrame, scheme: str, title: str) -> list[str]:
    """One row per bin, one R² column per model (its largest-size run), plus R²_max."""
    runs = group.sort_values("train_size").groupby("model").tail(1)
    b = bins[(bins["scheme"] == scheme) & bins["run_id"].isin(runs["run_id"])]
    if b.empty:
        return []
    models = [(r.model, r.run_id, r.train_size) for r in runs.itertuples()]
    head = "| Bin | n | " + " | ".join(f"{m} ({_size(s)})" for m, _, s in models)
    has_max = b["r2_max"].notna().any()
    head += " | R²_max |" if has_max else " |"
    lines = [f"## {title}", "", head,
             "|" + "---|" * (2 + len(models) + (1 if has_max else 0))]
    for (bin_, label), rows in b.groupby(["bin", "label"], sort=True):
        by_run = rows.set_index("run_id")
        cells = [_n(by_run["r2"].get(rid), 3) for _, rid, _ in models]
        n = int(rows["n"].max())
        line = f"| {label} | {n} | " + " | ".join(cells)
        if has_max:  # the ceiling depends on the test rows only: same for every run
            ceiling = rows["r2_max"].dropna()
            line += f" | {_n(ceiling.iloc[0], 3) if len(ceiling) else '—'}"
        lines.append(line + " |")
    return lines + [""]


def _moe_section(moe: pd.DataFrame) -> list[str]:
    lines = ["## 4. Mixture of experts", "",
             "| Run | Model | Scheme | Expert | n_test | R² expert | R² global | Δ R² |",
             "|---|---|---|---|---:|---:|---:|---:|"]
    for r in moe.itertuples():
        d = (r.r2 - r.r2_global) if _finite(r.r2) and _finite(r.r2_global) else None
        lines.append(f"| `{r.run_id}` | {r.model} | {r.scheme} | {r.label or r.expert} | "
                     f"{_n(r.n_test, 0)} | {_n(r.r2, 3)} | {_n(r.r2_global, 3)} | "
                     f"{'—' if d is None else f'{d:+.3f}'} |")
    return lines + [""]


def _finite(x) -> bool:
    return x is not None and isinstance(x, (int, float)) and math.isfinite(x)


def _n(x, digits: int) -> str:
    try:
        f = float(x)
    except (TypeError, ValueError):
        return "—"
    return f"{f:.{digits}f}" if math.isfinite(f) else "—"


def _size(n) -> str:
    """10000 → 10k, 1000000 → 1M (the research's size labels)."""
    try:
        n = int(n)
    except (TypeError, ValueError):
        return "—"
    if n >= 1_000_000 and n % 1_000_000 == 0:
        return f"{n // 1_000_000}M"
    if n >= 1000 and n % 1000 == 0:
        return f"{n // 1000}k"
    return str(n)
