"""Read-side helpers for the runner, the CLI and the TUI. Every call opens a short-lived
read-only connection and closes it before returning (readers block the writer)."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from engine.paths import store_path
from engine.paths import workspace as resolve_ws
from engine.store.connect import connect_ro

__all__ = ["connect_ro", "find_finished_run", "scaling_table", "store_exists", "query_df"]


def store_exists(workspace: Path | str | None) -> bool:
    return store_path(resolve_ws(workspace)).exists()


def query_df(workspace: Path | str | None, sql: str, params: list | None = None) -> pd.DataFrame:
    """Run one read-only query and return a DataFrame."""
    with connect_ro(resolve_ws(workspace)) as con:
        return con.execute(sql, params or []).df()


def find_finished_run(workspace: Path | str | None, *, model: str, config_hash: str,
                      dataset_fingerprint: str, train_size: int | None, noise_level: float,
                      seed: int, test_split: str) -> str | None:
    """run_id of the latest finished run with exactly this key, else None (also None when
    there is no store yet). Lets the runner skip work that is already done."""
    if not store_exists(workspace):
        return None
    row = query_df(workspace, """
        SELECT run_id FROM runs
        WHERE status = 'finished' AND model = ? AND config_hash = ?
          AND dataset_fingerprint = ? AND train_size IS NOT DISTINCT FROM ?
          AND abs(noise_level - ?) < 1e-12 AND seed = ? AND test_split = ?
        ORDER BY ended DESC NULLS LAST, run_id DESC LIMIT 1""",
                   [model, config_hash, dataset_fingerprint, train_size, float(noise_level),
                    int(seed), test_split])
    return None if row.empty else str(row.iloc[0, 0])


def scaling_table(workspace: Path | str | None, dataset: str | None = None) -> pd.DataFrame:
    """The `scaling_curve` view (model, dataset, noise_level, train_size, r2, mae, r2_lo,
    r2_hi, run_id): latest finished run per (model, dataset, noise_level, train_size)."""
    sql = "SELECT * FROM scaling_curve"
    params: list = []
    if dataset is not None:
        sql += " WHERE dataset = ?"
        params.append(dataset)
    return query_df(workspace, sql + " ORDER BY model, dataset, noise_level, train_size", params)
