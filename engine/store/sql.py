"""User SQL against the store, strictly read-only.

Why a read-only connection rather than parsing the SQL: DuckDB itself refuses every write
on a read-only connection, which no keyword filter can match for completeness. File access
(COPY … TO, ATTACH, read_csv) is switched off and the setting locked, so a query can
neither write files nor attach the store a second time."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from engine.errors import SpecError
from engine.store.connect import connect_ro


def run_query(workspace: Path, sql: str) -> pd.DataFrame:
    """Result of one read-only statement; SpecError for writes and SQL errors."""
    import duckdb

    with connect_ro(workspace) as con:
        con.execute("SET enable_external_access = false")
        con.execute("SET lock_configuration = true")
        try:
            rel = con.execute(sql)
            if rel.description is None:
                return pd.DataFrame()
            return rel.df()
        except duckdb.Error as exc:
            text = str(exc)
            if "read-only" in text.lower() or "read only" in text.lower():
                raise SpecError("the store is read-only for `query`; statements that "
                                "change it (INSERT, UPDATE, DELETE, CREATE, DROP, ...) are "
                                "refused", key="SQL", hint="only `logg-engine ingest` "
                                "writes the store; use SELECT") from None
            if "file system operations are disabled" in text:
                raise SpecError("`query` cannot read or write files (COPY, ATTACH, "
                                "read_csv, ...)", key="SQL", hint="use --csv/--json and "
                                "redirect the output to save results") from None
            raise SpecError(f"SQL error: {text.splitlines()[0]}", key="SQL",
                            hint="see docs/sql.md for the tables and views") from None
