"""The store's read-write transactions: BEGIN, then COMMIT when the block ends cleanly,
ROLLBACK when it raises — so a failed ingest or migration never leaves half of its rows.

Why one helper: ingest of a run, ingest of an analysis and each migration all replace a
set of rows as one unit; they used to write the BEGIN/COMMIT/ROLLBACK dance by hand."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any


@contextmanager
def transaction(con: Any) -> Iterator[Any]:
    """`with transaction(con): ...` — one DuckDB transaction on `con` (yielded). The
    block's exception is re-raised after the rollback."""
    import duckdb

    con.execute("BEGIN TRANSACTION")
    try:
        yield con
        con.execute("COMMIT")
    except BaseException:
        try:
            con.execute("ROLLBACK")
        except duckdb.TransactionException:
            pass  # a failed COMMIT already ended the transaction; its error is re-raised
        raise
