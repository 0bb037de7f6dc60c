"""Run listings, details and pairwise comparisons as plain data (the CLI and the TUI render
them). Comparisons flag differing evaluation keys: numbers from different test sets or
noise realisations are not comparable (docs/sql.md, Conventions)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pandas as pd

from engine.jsonsafe import json_safe
from engine.store.reader import StoreReader

SPEC_FIELDS = ("model", "preset", "config_hash", "dataset_name", "dataset_fingerprint",
               "generator_version", "train_size", "noise_level", "seed", "test_split",
               "val_split")
EVAL_KEY = ("dataset_fingerprint", "split", "noise_level", "realisation")
METRICS = ("r2", "mae", "rmse", "bias", "p90", "slope", "r2_max_pop", "eta", "n")


def list_runs(workspace: Path, *, model: str | None = None, status: str | None = None,
              dataset: str | None = None, limit: int | None = None) -> pd.DataFrame:
    """One row per run, newest first, with its overall R²/MAE when it has them; runs in
    flight are listed from their folders (engine.store.live), running or lost."""
    where, params = [], []
    for col, val in (("r.model", model), ("r.status", status), ("r.dataset_name", dataset)):
        if val is not None:
            where.append(f"{col} = ?")
            params.append(val)
    sql = ("SELECT r.run_id, r.model, r.preset, r.dataset_name AS dataset, r.train_size, "
           "r.noise_level, r.seed, r.status, o.r2, o.r2_lo, o.r2_hi, o.mae, r.duration_s, "
           "r.created FROM runs_now r LEFT JOIN run_overall o ON o.run_id = r.run_id AND "
           "o.subset = 'all'" + (" WHERE " + " AND ".join(where) if where else "") +
           " ORDER BY r.created DESC NULLS LAST, r.run_id DESC")
    if limit:
        sql += f" LIMIT {int(limit)}"
    with StoreReader(workspace, live=True) as r:
        return r.df(*r.runs_now(sql, params))


def show_run(workspace: Path, ref: str) -> dict[str, Any]:
    """Spec, provenance, reproduce command, metrics with CIs, per-bin SNR table (the
    reader's `run_detail`, the same one the TUI's Run detail shows)."""
    with StoreReader(workspace) as r:
        d = r.run_detail(ref)
    run, metrics = d.run, d.overall
    snr = d.bins[d.bins["scheme"] == "snr"].drop(columns="scheme")
    return json_safe({
        "run_id": d.run_id,
        "spec": {k: run.get(k) for k in SPEC_FIELDS},
        "params": dict(zip(d.params["key"], d.params["value"])),
        "provenance": {k: run.get(k) for k in ("status", "error", "created", "started", "ended",
                                               "duration_s", "host", "pid", "git_sha",
                                               "git_dirty", "peak_rss_mb", "device",
                                               "run_dir")},
        "versions": json.loads(run["versions"]) if run.get("versions") else None,
        "reproduce": run.get("command"),
        "metrics": {s: {r.metric: {"value": r.value, "lo": r.lo, "hi": r.hi}
                        for r in g.itertuples()} for s, g in metrics.groupby("subset")},
        "eval_key": ({k: metrics[k].iloc[0] for k in EVAL_KEY} if not metrics.empty else None),
        "snr_bins": snr.to_dict(orient="records"),
    })


def compare_runs(workspace: Path, a: str, b: str) -> dict[str, Any]:
    """Config keys that differ, metric deltas (B − A) with both CIs, eval-key check."""
    ra, rb = show_run(workspace, a), show_run(workspace, b)
    diff = {}
    for section in ("spec", "params"):
        keys = sorted(set(ra[section]) | set(rb[section]))
        for k in keys:
            va, vb = ra[section].get(k), rb[section].get(k)
            if va != vb:
                diff[k if section == "spec" else f"params.{k}"] = {"a": va, "b": vb}
    ma = (ra["metrics"] or {}).get("all", {})
    mb = (rb["metrics"] or {}).get("all", {})
    deltas = {}
    for m in METRICS:
        if m in ma or m in mb:
            x, y = ma.get(m, {}), mb.get(m, {})
            va, vb = x.get("value"), y.get("value")
            deltas[m] = {"a": va, "a_lo": x.get("lo"), "a_hi": x.get("hi"), "b": vb,
                         "b_lo": y.get("lo"), "b_hi": y.get("hi"),
                         "delta": None if va is None or vb is None else vb - va}
    ka, kb = ra["eval_key"], rb["eval_key"]
    return {"a": ra["run_id"], "b": rb["run_id"], "config_diff": diff, "metrics": deltas,
            "comparable": ka == kb, "eval_key": {"a": ka, "b": kb}}


