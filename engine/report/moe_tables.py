"""Report §2, the mixture of experts: oracle headroom per SNR bin and per Teff × [M/H] bin
(mask-aligned overall with CIs, out-of-range policy), learned gates (R² per bin per gate,
accuracy, confusion matrix, ρ with its CI — or "n/a" when ρ is undefined), and the
per-expert rows of MoE runs. Everything from the views moe_bins, moe_overall, moe_gates."""

from __future__ import annotations

import pandas as pd

from engine.analysis.moe.rho import NA_GAIN_CI, rho_undefined_reason
from engine.report.markdown import finite, hint, num, signed, size, table, with_ci

SNR_DESC = {"H": "SNR > 7", "M": "SNR ∈ (4,7]", "L": "SNR ∈ (2,4]", "X": "SNR ≤ 2"}
SNR_ORDER = ("H", "M", "L", "X")  # the research's table order: high SNR first
GATE_COLUMNS = (("logreg", "R² Classify (logreg)"), ("mlp", "R² MLP Gate"),
                ("linear", "R² Linear Gate"))
POLICY = {"clamp": "clamped to the nearest bin, labels clipped into the box",
          "fallback": "predicted by the global model"}


def moe_section(d) -> list[str]:
    out = ["## 📊 2. MoE Oracle Results", ""]
    out += ["### 2.1 By SNR Bins", ""] + snr_oracle(d)
    out += ["### 2.2 By Teff × MH (9-bin)", ""] + teff_mh_oracle(d)
    out += ["### 2.3 MoE with Learned Gate", ""] + gates(d)
    return out


def snr_oracle(d) -> list[str]:
    aid = d.pick("moe_oracle", bins="snr")
    if aid is None:
        return hint(f"no SNR-bin MoE oracle on `{d.dataset}` yet",
                    f"logg-engine moe oracle --bins snr --dataset {d.dataset}")
    b = d.view("moe_bins", aid).set_index("label")
    best = b["delta_r2"].astype(float).idxmax() if b["delta_r2"].notna().any() else None
    rows = []
    for lab in [x for x in SNR_ORDER if x in b.index] + [x for x in b.index if x not in SNR_ORDER]:
        r = b.loc[lab]
        desc = f"{SNR_DESC.get(lab, lab)} ({lab})"
        bold = lab == best
        rows.append([f"**{desc}**" if bold else desc, _int(r["n_test"]), _int(r["n_train"]),
                     f"**{num(r['r2_oracle'])}**" if bold else num(r["r2_oracle"]),
                     num(r["r2_global"]),
                     f"**{signed(r['delta_r2'])}**" if bold else signed(r["delta_r2"]),
                     str(r.get("expert") or "—")])
    out = table(["SNR Bin", "n_test", "n_train", "Oracle R²", "Global R²", "Δ R²", "Expert"],
                rows, "lrrrrrl") + [""]
    if best is not None:
        out += [f"**Key**: {SNR_DESC.get(best, best)} benefits most from MoE "
                f"(Δ R² {signed(b.loc[best, 'delta_r2'])}).", ""]
    return out + overall(d, aid)


def teff_mh_oracle(d) -> list[str]:
    aid = d.pick("moe_oracle", bins="teff-mh")
    if aid is None:
        return hint(f"no Teff × [M/H] MoE oracle on `{d.dataset}` yet",
                    f"logg-engine moe oracle --bins teff-mh --dataset {d.dataset}")
    b = d.view("moe_bins", aid).sort_values("r2_oracle", ascending=False, na_position="last")
    top = b["r2_oracle"].idxmax() if b["r2_oracle"].notna().any() else None
    rows = [[str(int(r.bin)), str(r.label), _int(r.n_test),
             f"**{num(r.r2_oracle)}**" if i == top else num(r.r2_oracle), num(r.r2_global),
             signed(r.delta_r2), str(r.expert or "—")] for i, r in zip(b.index, b.itertuples())]
    out = table(["Bin", "Description", "n_test", "Oracle R²", "Global R²", "Δ R²", "Expert"],
                rows, "llrrrrl") + [""]
    out += ["**Key Findings**:"] + teff_mh_findings(b) + [""]
    return out + overall(d, aid)


def teff_mh_findings(b: pd.DataFrame) -> list[str]:
    """Easiest bin, largest gain, and oracle R² / ΔR² per metallicity class."""
    b = b.dropna(subset=["r2_oracle", "delta_r2"])
    if b.empty:
        return ["- no bin has a finite R² (too few test rows per bin?)"]
    e, g = b.loc[b["r2_oracle"].idxmax()], b.loc[b["delta_r2"].idxmax()]
    lines = [f"- **{e['label']}** is easiest to predict (oracle R² {num(e['r2_oracle'])})",
             f"- **{g['label']}** gains most from specialization (Δ R² {signed(g['delta_r2'])})"]
    metal = b["label"].str.split(" ", n=1).str[1]
    parts = [f"{m}: oracle R² {num(rows['r2_oracle'].min())}–{num(rows['r2_oracle'].max())}, "
             f"mean Δ R² {signed(rows['delta_r2'].mean())}"
             for m, rows in b.groupby(metal, sort=False)]
    return lines + ["- by [M/H]: " + "; ".join(parts)]


def overall(d, aid: str) -> list[str]:
    """Mask-aligned overall rows (oracle and global on identical rows) + the policy."""
    o = d.view("moe_overall", aid).sort_values("subset", ascending=False)
    p = d.params_of(aid)
    rows = [[str(r.subset), _int(r.n), num(r.coverage),
             with_ci(r.r2_oracle, r.r2_oracle_lo, r.r2_oracle_hi),
             with_ci(r.r2_global, r.r2_global_lo, r.r2_global_hi),
             with_ci(r.delta_r2, r.delta_r2_lo, r.delta_r2_hi, sign=True)] for r in o.itertuples()]
    out = ["Overall, oracle and global model scored on the same rows (95 % paired "
           "bootstrap CIs):", ""]
    out += table(["Subset", "n", "Coverage", "Oracle R² [CI]", "Global R² [CI]", "Δ R² [CI]"],
                 rows, "lrrrrr") + [""]
    for r in o.itertuples():
        if finite(r.delta_r2_lo) and finite(r.delta_r2_hi):
            verdict = ("the oracle's gain is established (CI above 0)" if r.delta_r2_lo > 0
                       else "the oracle is worse (CI below 0)" if r.delta_r2_hi < 0
                       else "no established gain (the CI includes 0)")
            out += [f"- `{r.subset}`: Δ R² {signed(r.delta_r2)}: {verdict}."]
    out += [""] if len(o) else []
    policy = p.get("out_of_range", "clamp")
    out += [f"Experts: {p.get('expert', '—')}, trained on {size(p.get('size'))} rows, noise "
            f"level {p.get('noise_level', '—')}, seed {p.get('seed', '—')}; rows outside the "
            f"bins' box: `{policy}` ({POLICY.get(policy, policy)}). Analysis `{aid}`.", ""]
    return out


def gates(d) -> list[str]:
    found = {b: {g: d.pick("moe_gate", bins=b, gate=g) for g, _ in GATE_COLUMNS}
             for b in ("teff-mh", "snr")}
    out: list[str] = []
    for bins, ids in found.items():
        if not any(ids.values()):
            continue
        if bins == "snr":
            out += ["#### Gates on the SNR bins", ""]
        out += gate_bins_table(d, bins, ids) + gate_summary(d, ids) + confusions(d, ids)
    if not any(found["teff-mh"].values()):
        out += hint(f"no learned gate on the Teff × [M/H] bins of `{d.dataset}` yet",
                    f"logg-engine moe gate --bins teff-mh --gate logreg --dataset {d.dataset}")
        out[-2] = out[-2][:-2] + " (and the same with `--gate mlp`, `--gate linear`)._"
    return out


def gate_bins_table(d, bins: str, ids: dict) -> list[str]:
    per = {g: d.view("moe_gates", a).query("section == 'bin'").set_index("bin")
           for g, a in ids.items() if a}
    ref_gate = next(iter(per))
    ref = per[ref_gate]
    head = ["Bin", "n_test"] + [t for g, t in GATE_COLUMNS] + ["Oracle R²", "Global R²"]
    rows = []
    for b in sorted(ref.index):
        vals = {g: per[g]["r2_gate"].get(b) for g in per}
        good = {g: v for g, v in vals.items() if finite(v)}
        win = max(good, key=good.get) if len(good) > 1 else None
        cells = [f"**{num(vals[g])}**" if g == win else num(vals.get(g)) for g, _ in GATE_COLUMNS]
        label = ref.loc[b, "label"]
        name = SNR_DESC.get(label, label) if bins == "snr" else label
        rows.append([str(name), _int(ref.loc[b, "n"]), *cells, num(ref.loc[b, "r2_oracle"]),
                     num(ref.loc[b, "r2_global"])])
    out = table(head, rows, "lr" + "r" * (len(head) - 2)) + [""]
    missing = [g for g, _ in GATE_COLUMNS if not ids.get(g)]
    if missing:
        out += hint(f"gate(s) {', '.join(missing)} not run on these bins",
                    f"logg-engine moe gate --bins {bins} --gate {missing[0]} "
                    f"--dataset {d.dataset}")
    wins = {}
    for row in rows:
        for (g, _), c in zip(GATE_COLUMNS, row[2:5]):
            wins[g] = wins.get(g, 0) + c.startswith("**")
    if len(per) > 1 and rows:
        g = max(wins, key=wins.get)
        out += [f"**Key**: the {g} gate has the best R² on {wins[g]} of {len(rows)} bins "
                f"(oracle / global columns from the {ref_gate} analysis "
                f"`{ids[ref_gate]}`).", ""]
    return out


def gate_summary(d, ids: dict) -> list[str]:
    """Per gate and subset: R²_gate [CI], accuracy, fallback rate and ρ [CI]."""
    rows = []
    for g, aid in ids.items():
        if not aid:
            continue
        p = d.params_of(aid)
        gain_lo = oracle_gain_lo(d, p)
        for r in d.view("moe_gates", aid).query("section == 'overall'") \
                .sort_values("subset", ascending=False).itertuples():
            rows.append([g, str(p.get("routing", "—")), str(p.get("features", "—")),
                         num(p.get("tau"), 2), size(p.get("size")), str(r.subset), _int(r.n),
                         with_ci(r.r2_gate, r.r2_gate_lo, r.r2_gate_hi), num(r.r2_oracle),
                         num(r.r2_global), num(r.accuracy), num(r.fallback_rate),
                         rho_cell(r.rho, r.rho_lo, r.rho_hi, r.r2_oracle, r.r2_global,
                                  gain_lo.get(r.subset))])
    head = ["Gate", "Routing", "Features", "τ", "Size", "Subset", "n", "R² gate [CI]",
            "Oracle R²", "Global R²", "Accuracy", "Fallback", "ρ [CI]"]
    return ["ρ = (R²_gate − R²_global)/(R²_oracle − R²_global) on the same rows, with a "
            "95 % paired bootstrap CI; n/a when the oracle does not beat the global model "
            "(ρ undefined).", ""] + table(head, rows, "lllrrlrrrrrrr") + [""]


def rho_cell(rho, lo, hi, r2_oracle, r2_global, gain_lo=None) -> str:
    """ρ [CI], or why it is undefined. A ρ recorded before the rule existed is still
    hidden when the oracle gain is ≤ ε or its CI (from the matching oracle analysis)
    reaches 0; a NULL ρ with a positive gain means the gate analysis found its CI did."""
    gain = r2_oracle - r2_global if finite(r2_oracle) and finite(r2_global) else None
    reason = rho_undefined_reason(gain, gain_lo)
    if reason is None and not finite(rho):  # gain > ε, so rho_with_ci saw its CI reach 0
        reason = NA_GAIN_CI
    return reason or with_ci(rho, lo, hi, digits=2)


def oracle_gain_lo(d, gate_params: dict) -> dict[str, float]:
    """subset → lower 95 % bound of the oracle's ΔR², from the oracle analysis with the
    same experts (bins, expert, size, noise, seed, out-of-range), when there is one."""
    keys = ("bins", "expert", "size", "noise_level", "seed", "out_of_range")
    aid = d.pick("moe_oracle", **{k: gate_params.get(k) for k in keys if k in gate_params})
    o = d.view("moe_overall", aid)
    return {r.subset: r.delta_r2_lo for r in o.itertuples() if finite(r.delta_r2_lo)}


def confusions(d, ids: dict) -> list[str]:
    """One compact K×K matrix per gate: rows = true bin, columns = the gate's argmax bin."""
    out = []
    for g, aid in ids.items():
        c = d.confusion[d.confusion["analysis_id"] == aid] if aid and len(d.confusion) else None
        if c is None or c.empty:
            continue
        m = c.pivot_table(index="true_bin", columns="pred_bin", values="count",
                          aggfunc="sum", fill_value=0)
        k = list(m.columns)
        rows = []
        for t, r in m.iterrows():
            n = r.sum()
            rows.append([str(int(t)), *(str(int(v)) for v in r),
                         num(r.get(t, 0) / n if n else float("nan"), 2)])
        out += [f"Routing confusion of the {g} gate (rows: true bin, columns: the gate's "
                f"most weighted bin; `{aid}`):", ""]
        out += table(["true \\ gate", *(f"→{int(j)}" for j in k), "correct"], rows,
                     "l" + "r" * (len(k) + 1)) + [""]
    return out


def _int(x) -> str:
    return str(int(x)) if finite(x) else "—"
