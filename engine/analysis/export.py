"""`logg-engine export research DIR`: the research's result files (seed §5 paths),
written from the store so a reader of the original reports finds the same files.

Each file comes from the LATEST analysis of its kind (by `created`) or from the store's
run views; a file whose source is empty is skipped and reported. CSVs are written to a
temporary name and renamed. Columns are documented in docs/analyses.md."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pandas as pd

from engine.analysis.record import clean

_LATEST = ("SELECT analysis_id FROM analyses WHERE kind = ? {extra} "
           "ORDER BY created DESC, analysis_id DESC LIMIT 1")


def _latest(ws: Path, kind: str, where: str = "", params: list | None = None) -> str | None:
    from engine.store.read import query_df

    df = query_df(ws, _LATEST.format(extra=where), [kind, *(params or [])])
    return None if df.empty else str(df.iloc[0, 0])


def _write_csv(df: pd.DataFrame, path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    df.to_csv(tmp, index=False)
    os.replace(tmp, path)
    return path


def _write_json(doc, path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(json.dumps(clean(doc), indent=2, default=str) + "\n")
    os.replace(tmp, path)
    return path


def export_research(ws: Path, out: Path) -> dict[str, str]:
    """Write every file that has data; returns {relative path: 'written' | 'no data'}."""
    from engine.store.read import query_df

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
    for model, rel in (("ridge", "results/scaling_ml_ceiling/ridge_results.csv"),
                       ("lgbm", "results/scaling_ml_ceiling/lightgbm_results.csv")):
        put(rel, query_df(
            ws, 'SELECT train_size AS "Data Size", r2 AS "Test R²", mae AS "Test MAE", '
            'rmse AS "Test RMSE", duration_s AS "Train Time", dataset, noise_level, run_id '
            "FROM leaderboard WHERE model = ? ORDER BY dataset, noise_level, train_size",
            [model]))
    return done
