"""`logg-engine export research DIR`: the research's result files (paths in docs/analyses.md),
written from the store so a reader of the original reports finds the same files.

Each file comes from the LATEST analysis of its kind (by `created`) or from the store's
run views; a file whose source is empty is skipped and reported. Files are written
atomically (engine.atomic). Columns are documented in docs/analyses.md."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd

from engine.atomic import write_csv, write_text
from engine.jsonsafe import json_safe

_LATEST = ("SELECT analysis_id FROM analyses WHERE kind = ? {extra} "
           "ORDER BY created DESC, analysis_id DESC LIMIT 1")


def _latest(ws: Path, kind: str, where: str = "", params: list | None = None) -> str | None:
    from engine.store.reader import query_df

    df = query_df(ws, _LATEST.format(extra=where), [kind, *(params or [])])
    return None if df.empty else str(df.iloc[0, 0])


def _write_csv(df: pd.DataFrame, path: Path) -> Path:
    return write_csv(path, df)


def _write_json(doc, path: Path) -> Path:
    return write_text(path, json.dumps(json_safe(doc), indent=2, default=str) + "\n")


# finished runs of one model from the leaderboard (best run per point first), with the
# research's column names; {extra}/{join} add the model's own columns (run_facts/run_params)
_SCALING = ('SELECT l.train_size AS "Data Size", l.r2 AS "Test R²", l.mae AS "Test MAE", '
            'l.rmse AS "Test RMSE", l.duration_s AS "Train Time"{extra}, l.dataset, '
            "l.noise_level, l.test_split, l.run_id FROM leaderboard l {join} "
            "WHERE l.model = ? ORDER BY l.dataset, l.noise_level, l.train_size, l.rank")


def _vit_row(r: dict) -> dict:
    """One ViT scaling point as the summary JSON lists it."""
    return {"data_size": r["Data Size"], "test_r2": r["Test R²"],
            "test_r2_ci": [r["r2_lo"], r["r2_hi"]], "test_mae": r["Test MAE"],
            "test_rmse": r["Test RMSE"], "train_time_s": r["Train Time"],
            "n_params": r["n_params"], "best_epoch": r["best_epoch"], "preset": r["preset"],
            "dataset": r["dataset"], "noise_level": r["noise_level"],
            "test_split": r["test_split"], "run_id": r["run_id"]}


def export_research(ws: Path, out: Path) -> dict[str, str]:
    """Write every file that has data; returns {relative path: 'written' | 'no data'}."""
    from engine.store.reader import query_df

    out = Path(out)
    done: dict[str, str] = {}

    def put(rel: str, df: pd.DataFrame | None) -> None:
        if df is None or df.empty:
            done[rel] = "no data"
            return
        _write_csv(df, out / rel)
        done[rel] = "written"

    for rel, bins in (("results/scaling_oracle_moe/per_bin_results.csv", "teff-mh"),
                      ("results/logg_snr_oracle_moe/per_bin_results.csv", "snr")):
        aid = _latest(ws, "moe_oracle", "AND params->>'bins' = ?", [bins])
        put(rel, None if aid is None else query_df(
            ws, "SELECT bin, label AS name, n_train, n_test, r2_oracle AS oracle_r2, "
            "r2_global AS global_r2, delta_r2, mae_oracle AS oracle_mae, "
            "mae_global AS global_mae, alpha FROM moe_bins WHERE analysis_id = ? "
            "ORDER BY bin", [aid]))
        if bins == "teff-mh":
            put("results/scaling_oracle_moe/results.csv", None if aid is None else query_df(
                ws, "SELECT subset, n, coverage, r2_global AS global_r2, r2_oracle AS oracle_r2,"
                " delta_r2, delta_r2_lo, delta_r2_hi FROM moe_overall WHERE analysis_id = ?",
                [aid]))
    aid = _latest(ws, "moe_gate", "AND params->>'bins' = 'teff-mh'")
    put("results/moe/regression_gate/per_bin_results.csv", None if aid is None else query_df(
        ws, "SELECT bin, label AS name, n AS n_test, r2_gate, r2_oracle, r2_global, "
        "gate, routing FROM moe_gates WHERE analysis_id = ? AND section = 'bin' ORDER BY bin",
        [aid]))
    aid = _latest(ws, "deleakage")
    put("results/logg_snr_moe/deleakage_results.csv", None if aid is None else query_df(
        ws, "SELECT strategy, n_features, logg_r2_train, logg_r2_test, snr_r2_train, "
        "snr_r2_test, passed FROM deleakage WHERE analysis_id = ? ORDER BY strategy", [aid]))
    if aid is not None:
        meta = query_df(ws, "SELECT params FROM analyses WHERE analysis_id = ?", [aid])
        _write_json(json.loads(meta.iloc[0, 0]),
                    out / "results/logg_snr_moe/deleakage_metadata.json")
        done["results/logg_snr_moe/deleakage_metadata.json"] = "written"
    put("results/scaling_ml_ceiling/ridge_results.csv", query_df(ws, _SCALING.format(
        extra=', coalesce(f.num_value, p.num_value) AS "Alpha"',
        join="LEFT JOIN run_facts f ON f.run_id = l.run_id AND f.key = 'model.alpha' "
             "LEFT JOIN run_params p ON p.run_id = l.run_id AND p.key = 'alpha'"), ["ridge"]))
    put("results/scaling_ml_ceiling/lightgbm_results.csv", query_df(ws, _SCALING.format(
        extra=', f.num_value AS "Actual Trees"',
        join="LEFT JOIN run_facts f ON f.run_id = l.run_id "
             "AND f.key = 'model.best_iteration'"), ["lgbm"]))
    vit = query_df(ws, _SCALING.format(
        extra=", n.num_value AS n_params, e.num_value AS best_epoch, l.preset, l.r2_lo, "
              "l.r2_hi",
        join="LEFT JOIN run_facts n ON n.run_id = l.run_id AND n.key = 'model.n_params' "
             "LEFT JOIN run_facts e ON e.run_id = l.run_id AND e.key = 'model.best_epoch'"),
        ["vit"])
    rel = "results/vit_scaling_summary.json"
    if vit.empty:
        done[rel] = "no data"
    else:
        _write_json({"model": "vit", "metric": "test R² / MAE (dex) on the frozen test split",
                     "results": [_vit_row(r) for r in vit.to_dict(orient="records")]},
                    out / rel)
        done[rel] = "written"
    return done
