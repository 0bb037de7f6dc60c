"""The report's "ViT variants" section: every finished ViT run of the dataset with its head
(linear | moe), loss, labels and epochs, log g R² (the one protocol), the extra labels' R²
of multi-target runs (run_facts `targets.<label>.r2`) and the 95 % coverage; then, for
runs that differ from a plain single-label linear-head MSE ViT only in head or labels (same
preset architecture, size, epochs, seed and noise), ΔR²(log g): does the MoE head or joint
prediction of T_eff and [M/H] help log g? Per SNR bin and Teff×[M/H] bin it lists ΔR²."""

from __future__ import annotations

import json

import pandas as pd

from engine.report.markdown import num, signed, table

VARIANT_KEYS = ("head", "targets", "loss")


def load_vit_variants(con, dataset: str) -> dict[str, pd.DataFrame]:
    runs = con.execute(
        "SELECT r.run_id, r.preset, r.train_size, r.noise_level, r.seed, o.r2, o.n "
        "FROM runs r JOIN run_overall o ON o.run_id = r.run_id AND o.subset = 'all' "
        "WHERE r.status = 'finished' AND r.model = 'vit' AND r.dataset_name = ? "
        "ORDER BY r.ended", [dataset]).df()
    if runs.empty:
        return {}
    ids = runs["run_id"].tolist()
    params = con.execute("SELECT run_id, key, text_value FROM run_params WHERE run_id IN "
                         "(SELECT unnest(?))", [ids]).df()
    facts = con.execute("SELECT run_id, key, num_value FROM run_facts WHERE run_id IN "
                        "(SELECT unnest(?)) AND key LIKE 'targets.%.r2'", [ids]).df() \
        if _has(con, "run_facts") else pd.DataFrame(columns=["run_id", "key", "num_value"])
    bins = con.execute("SELECT run_id, scheme, bin, label, n, r2 FROM bin_metrics WHERE "
                       "run_id IN (SELECT unnest(?)) AND scheme IN ('snr', 'teff_mh')",
                       [ids]).df()
    cov = con.execute("SELECT run_id, cov95 FROM calibration WHERE run_id IN "
                      "(SELECT unnest(?))", [ids]).df() if _has(con, "calibration") \
        else pd.DataFrame(columns=["run_id", "cov95"])
    return {"runs": runs, "params": params, "facts": facts, "bins": bins, "cov": cov}


def vit_variants_section(d) -> list[str]:
    v = getattr(d, "variants", None) or {}
    if not v:
        return []
    runs = _table(v)
    out = ["## ViT variants: MoE head, multi-task, β-NLL", ""]
    rows = [[r.run_id[-4:], r.preset, str(int(r.train_size)), r.head, r.loss, r.targets,
             str(r.epochs), num(r.r2, 3), num(r.r2_T_eff, 3), num(r.r2_M_H, 3),
             num(r.cov95, 3)] for r in runs.itertuples()]
    out += table(["run", "preset", "size", "head", "loss", "labels", "epochs", "R² log g",
                  "R² T_eff", "R² [M/H]", "cov 95"], rows, "lllllllrrrr") + [""]
    out += _deltas(runs, v["bins"])
    return out


def _table(v) -> pd.DataFrame:
    p = v["params"].pivot_table(index="run_id", columns="key", values="text_value",
                                aggfunc="first")
    runs = v["runs"].set_index("run_id")
    for k, default in (("head", "linear"), ("loss", "mse"), ("targets", '["log_g"]'),
                       ("epochs", "")):
        runs[k] = p[k].reindex(runs.index).fillna(default) if k in p else default
    runs["targets"] = runs["targets"].map(_labels)
    runs["arch"] = [json.dumps({k: p.loc[i].get(k) for k in p.columns
                                if k not in VARIANT_KEYS + ("device",)}, sort_keys=True,
                               default=str) if i in p.index else "" for i in runs.index]
    f = v["facts"].assign(label=v["facts"]["key"].str.split(".").str[1])
    for lab in ("T_eff", "M_H"):
        m = f[f["label"] == lab].set_index("run_id")["num_value"]
        runs[f"r2_{lab}"] = m.reindex(runs.index)
    runs["cov95"] = v["cov"].set_index("run_id")["cov95"].reindex(runs.index)
    return runs.reset_index()


def _deltas(runs: pd.DataFrame, bins: pd.DataFrame) -> list[str]:
    """ΔR²(log g) of each variant against the plain run with the same architecture."""
    out = []
    key = ["arch", "train_size", "noise_level", "seed"]
    plain = runs[(runs["head"] == "linear") & (runs["targets"] == "log_g")
                 & (runs["loss"] == "mse")]
    rows = []
    for r in runs.itertuples():
        if r.run_id in set(plain["run_id"]):
            continue
        base = plain[(plain[key] == pd.Series({k: getattr(r, k) for k in key})).all(1)]
        if base.empty:
            continue
        b = base.iloc[-1]
        what = ", ".join(x for x in (f"head={r.head}" if r.head != "linear" else "",
                                     f"labels={r.targets}" if r.targets != "log_g" else "",
                                     f"loss={r.loss}" if r.loss != "mse" else "") if x)
        rows.append([what, str(int(r.train_size)), num(b.r2, 3), num(r.r2, 3),
                     signed(r.r2 - b.r2, 3), _bin_gain(bins, r.run_id, b.run_id)])
    if rows:
        out += ["Against the plain ViT (same architecture, size, epochs, seed; one test "
                "split):", ""]
        out += table(["variant", "size", "R² plain", "R² variant", "ΔR² log g",
                      "bins better (snr + teff_mh)"], rows, "lrrrrr") + [""]
    else:
        out += ["No variant has a plain ViT twin (same architecture, size, seed) yet: run "
                "`logg-engine run vit --set head=moe` (or `--set targets=log_g,T_eff,M_H`) "
                "beside `logg-engine run vit` at the same size.", ""]
    return out


def _bin_gain(bins: pd.DataFrame, a: str, b: str) -> str:
    x = bins[bins["run_id"] == a].set_index(["scheme", "bin"])["r2"]
    y = bins[bins["run_id"] == b].set_index(["scheme", "bin"])["r2"]
    both = pd.concat([x, y], axis=1, keys=["a", "b"]).dropna()
    return f"{int((both['a'] > both['b']).sum())}/{len(both)}" if len(both) else "—"


def _labels(text) -> str:
    try:
        v = json.loads(text) if isinstance(text, str) and text.startswith("[") else text
    except ValueError:
        v = text
    return ",".join(v) if isinstance(v, list) else str(v)


def _has(con, name: str) -> bool:
    """The store has this table or view (older stores lack run_facts / calibration)."""
    return bool(con.execute("SELECT count(*) FROM information_schema.tables "
                            "WHERE table_name = ?", [name]).fetchone()[0])
