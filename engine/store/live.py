"""Runs in flight beside the store's runs, for `logg-engine runs ls` and logg-tui's Runs.

A run reaches the store when its worker ingests it at the end. Until then (or forever,
when its worker was SIGKILLed) the store does not know it, or holds a stale `running` row
from an earlier ingest. `runs_now_sql(ws)` is a `WITH runs_now AS (...)` prefix: the store's
`runs` with every run folder that has no `end` event (engine.run_state.in_flight) added or
replacing its row, each row built exactly as ingest would write it now
(engine.store.runfolder.read_run_folder: the same fold, so the same running/lost verdict).
Query `runs_now` through `StoreReader(ws, live=True).runs_now(sql, params)`."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from engine.errors import StoreError

TYPES = {"train_size": "BIGINT", "seed": "BIGINT", "pid": "BIGINT", "noise_level": "DOUBLE",
         "duration_s": "DOUBLE", "peak_rss_mb": "DOUBLE", "created": "TIMESTAMP",
         "started": "TIMESTAMP", "ended": "TIMESTAMP", "last_event": "TIMESTAMP",
         "git_dirty": "BOOLEAN", "versions": "JSON", "spec": "JSON"}


def live_rows(workspace: Path, *, now: float | None = None) -> list[dict[str, Any]]:
    """`runs` rows (without `ingested`) of the run folders in flight."""
    from engine.run_state import in_flight
    from engine.store.runfolder import read_run_folder

    rows = []
    for run_dir, _run, _state in in_flight(workspace, now=now):
        try:
            rows.append(read_run_folder(run_dir, now=now).run)
        except StoreError:
            continue  # unreadable now (being written): `ingest` reports broken folders
    return rows


def runs_now_sql(rows: list[dict[str, Any]]) -> tuple[str, list[Any]]:
    """(`WITH runs_now AS (...)`, its parameters) for the given live rows."""
    if not rows:
        return "WITH runs_now AS (SELECT * FROM runs)\n", []
    cols = list(rows[0])
    one = "(" + ", ".join(f"CAST(? AS {TYPES.get(c, 'VARCHAR')})" for c in cols) + ")"
    sql = (f"WITH live AS (SELECT * FROM (VALUES {', '.join([one] * len(rows))}) "
           f"v({', '.join(cols)})),\n"
           "runs_now AS (SELECT * FROM runs WHERE run_id NOT IN (SELECT run_id FROM live) "
           "UNION ALL BY NAME SELECT * FROM live)\n")
    return sql, [r[c] for r in rows for c in cols]


def empty_store() -> Any:
    """An in-memory DuckDB with the store's schema and migrations (tables and views)."""
    import duckdb

    from engine.store.connect import SCHEMA_FILE, migrations

    con = duckdb.connect(":memory:")
    con.execute(SCHEMA_FILE.read_text())
    for _n, path in migrations():
        con.execute(path.read_text())
    return con
