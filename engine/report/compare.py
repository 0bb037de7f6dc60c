"""Report 🎯 summary, 🔎 comparison with the research, 📌 next steps.

The comparison puts our stored numbers beside the research's reference values
(engine.report.research_reference, the only hand-typed numbers in the report), always
labelled as the research's, for the rows that exist in both: best R² per model and size,
MoE ΔR² per bin, de-leakage pass/fail per strategy."""

from __future__ import annotations

from engine.report import research_reference as REF
from engine.report.markdown import finite, hint, num, signed, size, table, with_ci
from engine.report.moe_tables import SNR_DESC, SNR_ORDER
from engine.report.sections import as_bool

RESEARCH_SIZES = (50_000, 100_000, 200_000, 500_000, 1_000_000)
REF_COL = "Research (reference)"


def _main(d):
    return d.points[d.points["noise_level"] == d.noise].dropna(subset=["r2"])


def summary_section(d, compare: bool = True) -> list[str]:
    out = ["## 🎯 Summary", ""]
    pts = _main(d)
    rows = []
    if len(pts):
        b = pts.loc[pts["r2"].idxmax()]
        rows.append(["**Overall R²**", f"{b['model']} @ {size(b['train_size'])}",
                     f"**{num(b['r2'])}**"])
    bins = d.view("moe_bins", d.pick("moe_oracle", bins="teff-mh")).dropna(
        subset=["r2_oracle", "delta_r2"])
    if len(bins):
        e, g = bins.loc[bins["r2_oracle"].idxmax()], bins.loc[bins["delta_r2"].idxmax()]
        rows.append(["**Best MoE bin** (oracle)", str(e["label"]), f"**{num(e['r2_oracle'])}**"])
        rows.append(["**Largest MoE gain**", str(g["label"]), f"**{signed(g['delta_r2'])}**"])
    adv = advantage(pts)
    if adv:
        a, b2, n, gap = adv
        rows.append([f"**{a} advantage over {b2}**", f"@ {size(n)} data",
                     f"**{signed(gap)} R²**"])
    gate = best_gate(d)
    if gate:
        rows.append(["**Best learned gate** (R², all rows)", gate[0], f"**{num(gate[1])}**"])
    out += (table(["Metric", "Best Model", "Value"], rows) + [""]) if rows else \
        hint("nothing to summarise yet", f"logg-engine scaling --dataset {d.dataset}")
    if len(pts):
        per = pts.sort_values("r2").groupby("model").tail(1).sort_values("r2", ascending=False)
        head = ["Model", "Best R² [95% CI]", "At size"]
        if compare:
            head += [f"{REF_COL} at that size", "Research's best (reference)"]
        body = []
        for r in per.itertuples():
            row = [f"**{r.model}**", with_ci(r.r2, r.r2_lo, r.r2_hi), size(r.train_size)]
            if compare:
                same = REF.SCALING.get((r.model, int(r.train_size)))
                best = _research_best(r.model)
                row += [num(same[0]) if same else "— (size not in the research)",
                        f"{num(best[1])} @ {size(best[0])}" if best else "—"]
            body.append(row)
        out += table(head, body, "lrr" + ("rr" if compare else "")) + [""]
        if compare:
            out += [f"_{REF_COL}: the research's numbers ({REF.SOURCE}), not ours._", ""]
    return out


def advantage(pts):
    """(winner, runner-up, largest size every model ran, R² gap) or None."""
    models = pts["model"].unique()
    if len(models) < 2:
        return None
    common = set.intersection(*(set(pts[pts["model"] == m]["train_size"]) for m in models))
    if not common:
        return None
    n = max(common)
    at = pts[pts["train_size"] == n].sort_values("r2", ascending=False)
    return at.iloc[0]["model"], at.iloc[1]["model"], n, at.iloc[0]["r2"] - at.iloc[1]["r2"]


def best_gate(d):
    best = None
    for g in ("logreg", "mlp", "linear"):
        o = d.view("moe_gates", d.pick("moe_gate", bins="teff-mh", gate=g))
        o = o[(o["section"] == "overall") & (o["subset"] == "all")] if len(o) else o
        if len(o) and finite(o.iloc[0]["r2_gate"]) and (best is None or
                                                        o.iloc[0]["r2_gate"] > best[1]):
            best = (g, float(o.iloc[0]["r2_gate"]))
    return best


def _research_best(model: str):
    cands = [(n, v[0]) for (m, n), v in REF.SCALING.items() if m == model]
    return max(cands, key=lambda c: c[1]) if cands else None


def comparison_section(d) -> list[str]:
    out = ["## 🔎 Comparison with the research", "",
           f"> **{REF_COL}** = the research's values ({REF.SOURCE}), typed in from its "
           "summary (engine/report/research_reference.py); **Ours** = this store, dataset "
           f"`{d.dataset}`. Different data and test sets: the differences are indicative, "
           "not like-for-like.", ""]
    rows = scaling_rows(d)
    if rows:
        out += ["Best test R² per model and size (noise_level 1.0):", ""]
        out += table(["Model", "Data Size", "Ours R²", f"{REF_COL} R²", "Ours − research"],
                     rows, "lrrrr") + [""]
    elif finite(d.n_train) and d.n_train < min(RESEARCH_SIZES):
        out += hint(f"no scaling row to compare: `{d.dataset}` has {int(d.n_train)} training "
                    f"rows, the research's smallest size is {size(min(RESEARCH_SIZES))}",
                    "logg-engine data generate --preset bosz-1m")
    else:
        have = sorted(set(int(n) for n in d.points["train_size"])) if len(d.points) else []
        out += hint("no run at noise_level 1.0 at a size the research reports (50k, 100k, "
                    f"200k, 500k, 1M; ours: {', '.join(size(n) for n in have) or 'none'})",
                    f"logg-engine scaling --dataset {d.dataset} --sizes 50k,100k")
    for bins, title in (("snr", "MoE oracle Δ R² per SNR bin"),
                        ("teff-mh", "MoE oracle Δ R² per Teff × [M/H] bin")):
        aid = d.pick("moe_oracle", bins=bins)
        if aid is None:
            out += hint(f"no {bins} MoE oracle to compare",
                        f"logg-engine moe oracle --bins {bins} --dataset {d.dataset}")
            continue
        out += [f"{title} (ours: `{aid}`, {size(d.params_of(aid).get('size'))} training rows):",
                ""] + table(["Bin", "Ours Δ R²", f"{REF_COL} Δ R²", "Ours oracle R²",
                             f"{REF_COL} oracle R²"], moe_rows(d, aid, bins), "lrrrr") + [""]
    aid = d.pick("deleakage")
    if aid is None:
        out += hint("no de-leakage study to compare",
                    f"logg-engine deleakage --dataset {d.dataset}")
    else:
        out += ["De-leakage pass/fail per strategy:", ""]
        out += table(["Strategy", "Ours", REF_COL, "Agree"], deleakage_rows(d, aid),
                     "llll") + [""]
    return out


def scaling_rows(d) -> list[list[str]]:
    pts = d.points[(d.points["noise_level"] - 1.0).abs() < 1e-9]
    rows = []
    for r in pts.sort_values(["model", "train_size"]).itertuples():
        ref = REF.SCALING.get((r.model, int(r.train_size)))
        if ref and finite(r.r2):
            rows.append([f"{r.model} ({REF.MODEL_NAMES.get(r.model, r.model)})",
                         size(r.train_size), num(r.r2), num(ref[0]), signed(r.r2 - ref[0])])
    return rows


def moe_rows(d, aid: str, bins: str) -> list[list[str]]:
    b = d.view("moe_bins", aid)
    rows = []
    if bins == "snr":
        b = b.set_index("label")
        for lab in [x for x in SNR_ORDER if x in b.index]:
            ref = REF.MOE_SNR.get(lab)
            rows.append([f"{SNR_DESC[lab]} ({lab})", signed(b.loc[lab, "delta_r2"]),
                         signed(ref[3]) if ref else "—", num(b.loc[lab, "r2_oracle"]),
                         num(ref[1]) if ref else "—"])
        return rows
    for r in b.sort_values("bin").itertuples():
        ref = REF.MOE_TEFF_MH.get(int(r.bin))
        rows.append([f"{int(r.bin)} {r.label}", signed(r.delta_r2),
                     signed(ref[2]) if ref else "—", num(r.r2_oracle),
                     num(ref[0]) if ref else "—"])
    return rows


def deleakage_rows(d, aid: str) -> list[list[str]]:
    df = d.view("deleakage", aid).set_index("strategy")
    rows = []
    for strategy, ref in REF.DELEAKAGE.items():
        ours = as_bool(df["passed"].get(strategy)) if strategy in df.index else None
        o = "—" if ours is None else ("✅" if ours else "❌")
        rows.append([strategy, o, "✅" if ref[3] else "❌",
                     "—" if o == "—" else ("yes" if (o == "✅") == ref[3] else "**no**")])
    return rows


def next_steps_section(d) -> list[str]:
    """Generated: sizes the research ran that we have not, analyses not yet run."""
    steps = []
    cap = d.n_train if finite(getattr(d, "n_train", None)) else None
    for model in ("ridge", "lgbm", "vit"):
        have = set(int(n) for n in d.points[d.points["model"] == model]["train_size"])
        want = [n for (m, n) in REF.SCALING if m == model and n not in have
                and (cap is None or n <= cap)]
        if want:
            steps.append(f"[ ] {model}: sizes the research ran but this dataset has not yet: "
                         f"`logg-engine scaling --dataset {d.dataset} --models {model} --sizes "
                         f"{','.join(size(n) for n in sorted(want))}`")
    if cap is not None and cap < max(RESEARCH_SIZES):
        steps.append(f"[ ] the research's sizes above {size(cap)} need a larger dataset "
                     "(`logg-engine data generate --preset bosz-1m`)")
    checks = ((d.pick("moe_oracle", bins="snr"), "moe oracle --bins snr"),
              (d.pick("moe_oracle", bins="teff-mh"), "moe oracle --bins teff-mh"),
              *((d.pick("moe_gate", bins="teff-mh", gate=g), f"moe gate --bins teff-mh --gate {g}")
                for g in ("logreg", "mlp", "linear")),
              (d.pick("deleakage"), "deleakage"), (d.pick("ceiling"), "ceiling"))
    for aid, cmd in checks:
        if aid is None:
            steps.append(f"[ ] `logg-engine {cmd} --dataset {d.dataset}`")
    out = ["## 📌 Next Steps", ""]
    if not steps:
        return out + ["Every section has data; nothing is missing.", ""]
    return out + [f"{i}. {s}" for i, s in enumerate(steps, 1)] + [""]
