"""Write one analysis folder (engine.analysis.record) into the store.

Same discipline as `ingest_run` (it reuses engine.store.connect's writer file lock,
lock-retrying open and schema/migration handling): one transaction deletes every row of
the analysis_id and inserts the fresh ones, so re-ingesting is idempotent and a crash
leaves the previous state. The analysis views (migrations/002_analysis_views.sql) are
(re)created when missing, so they exist even on a store whose schema predates them."""

from __future__ import annotations

import json
from pathlib import Path

from engine.errors import StoreError
from engine.paths import workspace as resolve_ws
from engine.store.connect import DEFAULT_TIMEOUT_S, MIGRATIONS_DIR, open_rw, store_lock
from engine.store.transaction import transaction

VIEWS_SQL = MIGRATIONS_DIR / "002_analysis_views.sql"
VIEW_NAMES = ("moe_bins", "moe_overall", "moe_gates", "deleakage", "ceiling")


def ingest_analysis(workspace: Path | str, analysis_dir: Path | str, *,
                    timeout_s: float = DEFAULT_TIMEOUT_S) -> str:
    """Replace the analysis' rows in the store; returns its analysis_id."""
    ws = resolve_ws(workspace)
    doc, table = _read_folder(Path(analysis_dir))
    with store_lock(ws, timeout_s=timeout_s):
        con = open_rw(ws, timeout_s=timeout_s)
        try:
            ensure_views(con)
            _write(con, doc, table)
        finally:
            con.close()
    return doc["analysis_id"]


def ensure_views(con) -> None:
    """Create the analysis views when a store lacks them (CREATE OR REPLACE: harmless)."""
    have = {r[0] for r in con.execute(
        "SELECT view_name FROM duckdb_views() WHERE NOT internal").fetchall()}
    if not set(VIEW_NAMES) <= have:
        con.execute(VIEWS_SQL.read_text())


def _read_folder(d: Path):
    import pyarrow.parquet as pq

    meta, rows = d / "analysis.json", d / "rows.parquet"
    for p in (meta, rows):
        if not p.exists():
            raise StoreError("not an analysis folder (missing file)", path=p,
                             hint="rerun the analysis command")
    try:
        doc = json.loads(meta.read_text())
        table = pq.read_table(rows)
    except Exception as exc:  # json and pyarrow raise several types for torn files
        raise StoreError(f"unreadable analysis folder: {exc}", path=d,
                         hint="rerun the analysis command") from exc
    for k in ("analysis_id", "kind"):
        if not doc.get(k):
            raise StoreError(f"analysis.json has no {k!r}", path=meta, key=k)
    return doc, table


def _write(con, doc: dict, table) -> None:
    aid = doc["analysis_id"]
    with transaction(con):
        con.execute("DELETE FROM analysis_rows WHERE analysis_id = ?", [aid])
        con.execute("DELETE FROM analyses WHERE analysis_id = ?", [aid])
        con.execute("INSERT INTO analyses (analysis_id, kind, run_id, params, created) "
                    "VALUES (?, ?, ?, ?, ?)",
                    [aid, doc["kind"], doc.get("run_id"),
                     json.dumps({**(doc.get("params") or {}),
                                 "summary": doc.get("summary") or {}}),
                     doc.get("created")])
        con.register("_logg_analysis_rows", table)
        con.execute("INSERT INTO analysis_rows (analysis_id, row_idx, key, metric, value, "
                    "lo, hi, extra) SELECT ?, row_idx, key, metric, value, lo, hi, extra "
                    "FROM _logg_analysis_rows", [aid])
        con.unregister("_logg_analysis_rows")
